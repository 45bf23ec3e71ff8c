import { scenario, test, expect } from '../harness/scenario.ts'
import { busyboxRootfs, ociSpec, run, sh, T } from './_support/containers.ts'

const CID = 'ctr-ed'
const EPH = '/run/kata-containers/sandbox/ephemeral'
const HP = `${EPH}/hugepages`
const CACHE = `${EPH}/cache`
const LOCAL = '/run/kata-containers/shared/containers/sb-issue5/rootfs/local/scratch'
const NR = '/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages'

scenario(
  {
    name: 'emptydir-hugepages',
    upstream:
      'kata-containers e191c5b716 (hugepage emptyDirs always recreated in the guest as hugetlbfs, even with disable_guest_empty_dir) and a3e91d9ed2; agent ephemeral/local storage handlers (src/agent/src/storage/ephemeral_handler.rs, local_handler.rs)',
    requires: ['qemu'],
  },
  () => {
    test('a hugepage emptyDir (ephemeral/hugetlbfs, pagesize and size in bytes) is mounted in the guest with guest hugepages; tmpfs and local emptyDirs too; the container sees them', async ({ guest }) => {
      // Hugepages reserved in the guest by the witness first (as an operator would).
      const pre = await sh(guest, `echo 8 > /proc/sys/vm/nr_hugepages; cat ${NR}; grep HugePages_Total /proc/meminfo`)
      expect(pre.stdout.split('\n')[0]).toBe('8')
      const rootfs = await busyboxRootfs(guest, CID)
      const spec = ociSpec(rootfs, ['sleep', '1000'], {
        hugepageLimits: [{ Pagesize: '2MB', Limit: 8n << 20n }],
        mounts: [
          { destination: '/hugepages', source: HP, type: 'bind', options: ['rbind', 'rw'] },
          { destination: '/cache', source: CACHE, type: 'bind', options: ['rbind', 'rw'] },
          { destination: '/scratch', source: LOCAL, type: 'bind', options: ['rbind', 'rw'] },
        ],
      })
      await guest.agent.agent.createContainer(
        {
          containerId: CID,
          execId: CID,
          OCI: spec,
          storages: [
            { driver: 'ephemeral', source: 'nodev', fstype: 'hugetlbfs', options: ['pagesize=2097152,size=8388608'], mountPoint: HP },
            { driver: 'ephemeral', source: 'tmpfs', fstype: 'tmpfs', options: ['fsgid=2000'], mountPoint: CACHE },
            { driver: 'local', source: 'local', fstype: 'local', options: ['mode=0777', 'fsgid=3000'], mountPoint: LOCAL },
          ],
        },
        T,
      )
      await guest.agent.agent.startContainer({ containerId: CID }, T)

      // Witness: size/pagesize = 4 pages written to nr_hugepages (upstream sets the pool, it does not add),
      // hugetlbfs mounted with those byte options; tmpfs (1777) gains setgid with group 2000; local dir 2777 group 3000.
      const w = await sh(guest, `cat ${NR}; grep ' ${HP} ' /proc/mounts; stat -c '%a %g' ${CACHE} ${LOCAL}; grep -c ' ${CACHE} tmpfs ' /proc/mounts`)
      const lines = w.stdout.trim().split('\n')
      expect(lines[0]).toBe('4')
      expect(lines[1]).toMatch(new RegExp(`^nodev ${HP} hugetlbfs rw.*pagesize=2M.*size=8388608`))
      expect(lines.slice(2)).toEqual(['3777 2000', '2777 3000', '1'])

      const inside = await run(guest, CID, 'look', ['sh', '-c', 'grep -E " /(hugepages|cache|scratch) " /proc/mounts | cut -d" " -f2,3; echo hi > /cache/f; echo there > /scratch/g'])
      expect(inside).toMatchObject({ status: 0, err: '' })
      expect(inside.out.trim().split('\n').sort()).toEqual(['/cache tmpfs', '/hugepages hugetlbfs', '/scratch tmpfs'])
      expect((await sh(guest, `cat ${CACHE}/f ${LOCAL}/g`)).stdout).toBe('hi\nthere\n')
    })

    test('RemoveContainer unmounts the ephemeral storages; nothing of the container is left mounted', async ({ guest }) => {
      await guest.agent.agent.removeContainer({ containerId: CID, timeout: 10 }, T)
      const w = await sh(guest, `grep -E ' (${HP}|${CACHE}) ' /proc/mounts; grep -c ${CID} /proc/mounts; echo end`)
      expect(w.stdout.trim()).toBe('0\nend')
    })
  },
)
