// Functions behind the harness CLI's `image` commands (harness/cli.ts calls these).
export { imageBuild, imageRemove, DISK_DESCRIPTOR_FILE, type ImageBuildOptions, type ImageBuildSummary, type ImageBuildLayer } from './image-build.ts'
export { imageInspect, type ImageInspectRow } from './image-inspect.ts'
