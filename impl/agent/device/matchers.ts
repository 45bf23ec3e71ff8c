// Uevent matchers (spec §3 table; upstream src/agent/src/device/*.rs). Upstream builds the PCI regexes
// from the sysfs path WITHOUT escaping, so `.` in a BDF is a wildcard ("unescaped-regex quirk"); this
// port escapes them (identical results on well-formed paths, no false match on malformed ones).
export interface Uevent {
  action: string
  devpath: string
  subsystem: string
  devname: string
  seqnum: string
  interface: string
}

export interface UeventMatcher {
  /** Shown in the timeout error ("waiting for uevent <describe>"). */
  readonly describe: string
  matches(ev: Uevent): boolean
}

export function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** virtio-blk PCI: subsystem block, non-empty devname, devpath `^<rb><rel>/virtio<N>/block/<name>$`. */
export function blkPciMatcher(rootBus: string, rel: string, opts: { escape?: boolean } = {}): UeventMatcher {
  const prefix = opts.escape === false ? `${rootBus}${rel}` : escapeRegex(`${rootBus}${rel}`)
  const re = new RegExp(`^${prefix}/virtio[0-9]+/block/[^/]+$`)
  return {
    describe: `blk pci ${rootBus}${rel}`,
    matches: (ev) => ev.subsystem === 'block' && ev.devname !== '' && re.test(ev.devpath),
  }
}

/** virtio-blk MMIO: devpath ends with `/block/<devname>` where devname = vm_path minus `/dev/`. */
export function mmioBlkMatcher(devname: string): UeventMatcher {
  const suffix = `/block/${devname}`
  return { describe: `mmio blk ${devname}`, matches: (ev) => ev.subsystem === 'block' && ev.devname !== '' && ev.devpath.endsWith(suffix) }
}

/** pmem (nvdimm): devpath starts with /devices/LNXSYSTM and ends with /block/<devname>. */
export function pmemMatcher(devname: string): UeventMatcher {
  const suffix = `/block/${devname}`
  return {
    describe: `pmem ${devname}`,
    matches: (ev) => ev.subsystem === 'block' && ev.devname !== '' && ev.devpath.startsWith('/devices/LNXSYSTM') && ev.devpath.endsWith(suffix),
  }
}

/** SCSI `target:lun` on host 0 channel 0 (upstream FIXME): add/block; left of /block/ ends with /0:0:<t>:<l>; right equals devname. */
export function scsiMatcher(addr: string): UeventMatcher {
  const needle = `/0:0:${addr}`
  return {
    describe: `scsi ${addr}`,
    matches: (ev) => {
      if (ev.action !== 'add' || ev.subsystem !== 'block' || ev.devname === '') return false
      const i = ev.devpath.indexOf('/block/')
      if (i < 0) return false
      const left = ev.devpath.slice(0, i)
      const right = ev.devpath.slice(i + '/block/'.length)
      return left.endsWith(needle) && !right.includes('/') && right === ev.devname
    },
  }
}

/** Network PCI: add/net, non-empty interface, devpath starts with `<rb><rel>` (as a path: the next char is `/` or the end). */
export function netPciMatcher(rootBus: string, rel: string): UeventMatcher {
  const prefix = `${rootBus}${rel}`
  return {
    describe: `net pci ${prefix}`,
    matches: (ev) => ev.action === 'add' && ev.subsystem === 'net' && ev.interface !== '' && (ev.devpath === prefix || ev.devpath.startsWith(`${prefix}/`)),
  }
}

/** VFIO group: devpath equals /devices/virtual/vfio/<group>. */
export function vfioMatcher(group: string): UeventMatcher {
  const want = `/devices/virtual/vfio/${group}`
  return { describe: `vfio group ${group}`, matches: (ev) => ev.devpath === want }
}

/** PCI device: devpath equals `<rb><rel>`. */
export function pciDeviceMatcher(rootBus: string, rel: string): UeventMatcher {
  const want = `${rootBus}${rel}`
  return { describe: `pci device ${want}`, matches: (ev) => ev.devpath === want }
}
