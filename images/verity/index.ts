// dm-verity hash trees on the host: build (byte-identical to `veritysetup format`), parse, verify.
export * from './params.ts'
export * from './geometry.ts'
export * from './superblock.ts'
export { formatVerity, type VerityFormatOptions, type VerityFormatResult } from './format.ts'
export { verifyVerity, type VerityVerifyOptions, type VerityVerifyResult, type VerityBadBlock } from './verify.ts'
export { buildTree, buildUpperLevels, saltedDigest } from './hash-tree.ts'
export { digestBlocks, defaultWorkerCount, type DigestJob, type DigestPlacement } from './block-digests.ts'
