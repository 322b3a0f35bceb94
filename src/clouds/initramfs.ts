import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StepError } from '../os/plugin.js';
import type { GuestFs } from './guest-fs.js';
import type { CloudStepContext } from './types.js';

/**
 * Whether a kernel module a cloud needs at boot (NVMe, ENA, Hyper-V storage…)
 * is available before the root filesystem is mounted: built into the kernel
 * (`CONFIG_…=y` in /boot/config-VERSION) or present in its initramfs.
 */

/** Module name → the kernel option that builds it. */
export const MODULE_OPTIONS: Record<string, string> = {
  nvme: 'BLK_DEV_NVME',
  ena: 'ENA_ETHERNET',
  virtio_blk: 'VIRTIO_BLK',
  virtio_scsi: 'SCSI_VIRTIO',
  virtio_net: 'VIRTIO_NET',
  hv_vmbus: 'HYPERV',
  hv_storvsc: 'HYPERV_STORAGE',
  hv_netvsc: 'HYPERV_NET',
  vmw_pvscsi: 'VMWARE_PVSCSI',
  vmxnet3: 'VMXNET3',
  xen_blkfront: 'XEN_BLKDEV_FRONTEND',
};

export type ModulePresence = 'built-in' | 'initramfs' | 'missing' | 'not-in-kernel';

/** The newest kernel version that has both a vmlinuz and an initrd.img in /boot. */
export async function newestKernel(fs: GuestFs): Promise<string | null> {
  const boot = (await fs.list('/boot')) ?? [];
  const versions = boot
    .filter((f) => f.startsWith('vmlinuz-'))
    .map((f) => f.slice('vmlinuz-'.length))
    .filter((v) => boot.includes(`initrd.img-${v}`))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return versions.at(-1) ?? null;
}

const MAGIC: [Buffer, string[]][] = [
  [Buffer.from([0x1f, 0x8b]), ['gzip', '-dc']],
  [Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), ['zstd', '-dcq']],
  [Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), ['xz', '-dc']],
  [Buffer.from([0x02, 0x21, 0x4c, 0x18]), ['lz4', '-dc']],
  [Buffer.from('070701'), ['cat']],
];

/**
 * Where the main (compressed) archive of an initramfs starts: Debian's
 * initrd may begin with uncompressed cpio archives (early microcode), each
 * ending with a `TRAILER!!!` entry and zero padding.
 */
async function mainArchiveOffset(file: string): Promise<{ offset: number; decompress: string[] }> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    let offset = 0;
    const head = Buffer.alloc(110);
    for (let guard = 0; guard < 10_000 && offset < size; guard++) {
      const { bytesRead } = await fh.read(head, 0, head.length, offset);
      const at = head.subarray(0, bytesRead);
      if (at.subarray(0, 6).toString('latin1') === '070701') {
        // An uncompressed newc cpio: walk its entries (header, name, data, each 4-byte aligned).
        const namesize = parseInt(at.subarray(94, 102).toString('latin1'), 16);
        const filesize = parseInt(at.subarray(54, 62).toString('latin1'), 16);
        const nameBuf = Buffer.alloc(namesize);
        await fh.read(nameBuf, 0, namesize, offset + 110);
        const name = nameBuf.subarray(0, namesize - 1).toString('latin1');
        offset = align4(align4(offset + 110 + namesize) + filesize);
        if (name === 'TRAILER!!!') {
          // zero padding between archives
          const pad = Buffer.alloc(512);
          for (;;) {
            const { bytesRead: n } = await fh.read(pad, 0, pad.length, offset);
            if (n === 0) return { offset, decompress: ['cat'] };
            const nz = pad.subarray(0, n).findIndex((b) => b !== 0);
            if (nz >= 0) {
              offset += nz;
              break;
            }
            offset += n;
          }
          const next = Buffer.alloc(6);
          await fh.read(next, 0, 6, offset);
          if (next.toString('latin1') === '070701') continue;
          const found = MAGIC.find(([m]) => next.subarray(0, m.length).equals(m));
          if (!found) throw new StepError('initramfs_unreadable', `unknown compression after the early cpio archive at byte ${offset}`);
          return { offset, decompress: found[1] };
        }
        continue;
      }
      const found = MAGIC.find(([m]) => at.subarray(0, m.length).equals(m));
      if (!found) throw new StepError('initramfs_unreadable', `unknown initramfs format (first bytes ${at.subarray(0, 6).toString('hex')})`);
      return { offset, decompress: found[1] };
    }
    throw new StepError('initramfs_unreadable', 'no archive found in the initramfs');
  } finally {
    await fh.close();
  }
}

const align4 = (n: number) => (n + 3) & ~3;

/** Names of the kernel modules inside an initramfs file (`nvme`, `ena`…; `-` written as `_`). */
export async function initramfsModules(ctx: Pick<CloudStepContext, 'run'>, file: string): Promise<Set<string>> {
  const { offset, decompress } = await mainArchiveOffset(file);
  // Only module names come back: the runner keeps just the tail of a long output.
  const script = `tail -c +$(($2 + 1)) "$1" | ${decompress.join(' ')} | cpio -t --quiet 2>/dev/null | sed -n 's#.*/\\([^/]*\\)\\.ko\\(\\.[a-z]*\\)\\{0,1\\}$#\\1#p' | tr - _ | sort -u`;
  const r = await ctx.run('sh', ['-c', script, 'sh', file, String(offset)]);
  if (r.code !== 0) throw new StepError('initramfs_unreadable', `listing the initramfs failed: ${r.stderr.trim()}`);
  return new Set(r.stdout.split('\n').filter(Boolean));
}

/** Each module's presence at boot for the newest kernel of the image. */
export async function modulesAtBoot(ctx: Pick<CloudStepContext, 'run' | 'workdir'>, fs: GuestFs, modules: string[]): Promise<Record<string, ModulePresence>> {
  const result: Record<string, ModulePresence> = {};
  if (!modules.length) return result;
  const kernel = await newestKernel(fs);
  if (!kernel) throw new StepError('kernel_not_found', 'the image has no kernel with an initramfs in /boot');
  const config = (await fs.read(`/boot/config-${kernel}`))?.toString('utf8') ?? '';
  const initrd = join(ctx.workdir, 'initrd.inspect');
  let inInitrd: Set<string> | null = null;
  try {
    for (const m of modules) {
      const option = MODULE_OPTIONS[m];
      const value = option ? new RegExp(`^CONFIG_${option}=(.)`, 'm').exec(config)?.[1] : undefined;
      if (value === 'y') result[m] = 'built-in';
      else if (option && config && value === undefined) result[m] = 'not-in-kernel';
      else {
        if (!inInitrd) {
          if (!(await fs.copyOut(`/boot/initrd.img-${kernel}`, initrd))) throw new StepError('kernel_not_found', `/boot/initrd.img-${kernel} is missing`);
          inInitrd = await initramfsModules(ctx, initrd);
        }
        result[m] = inInitrd.has(m) ? 'initramfs' : 'missing';
      }
    }
  } finally {
    await rm(initrd, { force: true });
  }
  return result;
}
