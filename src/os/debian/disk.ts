import { randomUUID } from 'node:crypto';
import { open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunResult } from '../plugin.js';
import type { RunTool } from '../media/tools.js';
import { TreeWriter } from '../tree-writer.js';


const SECTOR = 512;
/** The root partition starts at 1 MiB; GRUB's core image lives in the gap before it. */
const PARTITION_START = 2048;
const GRUB_PC_DIR = '/usr/lib/grub/i386-pc';
/** Modules built into GRUB's core image: enough to find the root filesystem by UUID and read its config. */
const CORE_MODULES = ['biosdisk', 'part_msdos', 'ext2', 'search', 'search_fs_uuid', 'configfile', 'normal', 'linux', 'gzio', 'echo', 'test'];

export interface DiskLayout {
  rootUuid: string;
  kernel: string;
  initrd: string;
}

async function must(run: RunTool, command: string, args: string[], options?: { input?: string }): Promise<RunResult> {
  const r = await run(command, args, options);
  if (r.code !== 0) throw new Error(`${command} exited with ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' / ')}`);
  return r;
}

/** The newest kernel and its initrd in the tree's /boot. */
export async function findKernel(tree: string): Promise<{ kernel: string; initrd: string }> {
  const boot = await TreeWriter.with(tree, (t) => t.readdir('/boot'));
  const kernels = boot.filter((f) => f.startsWith('vmlinuz-')).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const kernel = kernels.at(-1);
  if (!kernel) throw new Error(`no kernel in ${join(tree, 'boot')}: the bootstrap must include a linux-image package`);
  const initrd = `initrd.img-${kernel.slice('vmlinuz-'.length)}`;
  if (!boot.includes(initrd)) throw new Error(`no ${initrd} next to ${kernel}`);
  return { kernel, initrd };
}

/**
 * Writes what the tree needs to boot from its own disk: fstab naming the
 * root by UUID (no udev on the build host to resolve labels) and a GRUB
 * config with a serial console.
 */
export async function prepareTreeForBoot(root: string, rootUuid: string, extraCmdline = ''): Promise<DiskLayout> {
  const { kernel, initrd } = await findKernel(root);
  // Through the tree writer: a template file or a package may have made any of these paths a symlink.
  return TreeWriter.with(root, async (tree) => {
    await tree.writeFile('/etc/fstab', `UUID=${rootUuid} / ext4 errors=remount-ro 0 1\n`);
    for (const f of await readdir(GRUB_PC_DIR)) {
      if (f.endsWith('.mod') || f.endsWith('.lst')) await tree.writeFile(`/boot/grub/i386-pc/${f}`, await readFile(join(GRUB_PC_DIR, f)));
    }
    const cmdline = `root=UUID=${rootUuid} ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 no_timer_check ${extraCmdline}`.trim();
    await tree.writeFile(
      '/boot/grub/grub.cfg',
      [
        // Cloud images boot unattended (Debian's own cloud images do the same); a second here is a second of every boot.
        'set timeout=0',
        'serial --unit=0 --speed=115200',
        'terminal_input console serial',
        'terminal_output console serial',
        `menuentry 'Debian GNU/Linux' {`,
        `  search --no-floppy --fs-uuid --set=root ${rootUuid}`,
        `  linux /boot/${kernel} ${cmdline}`,
        `  initrd /boot/${initrd}`,
        '}',
        '',
      ].join('\n'),
    );
    return { rootUuid, kernel, initrd };
  });
}

/**
 * Builds a bootable raw disk from a root tree without mounting anything:
 * an MBR partition table, an ext4 filesystem made from the tree in place
 * (`mkfs.ext4 -d` at the partition's offset), and GRUB for BIOS written
 * straight into the MBR and the gap before the partition.
 */
export async function assembleDisk(run: RunTool, args: { tree: string; disk: string; sizeBytes: bigint; workdir: string; rootUuid?: string }): Promise<DiskLayout> {
  const rootUuid = args.rootUuid ?? randomUUID();
  const layout = await prepareTreeForBoot(args.tree, rootUuid);
  const sectors = args.sizeBytes / BigInt(SECTOR);

  const fh = await open(args.disk, 'w');
  await fh.truncate(Number(args.sizeBytes));
  await fh.close();
  await must(run, 'sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', args.disk], { input: `label: dos\nstart=${PARTITION_START}, type=83, bootable\n` });

  const partBytes = (sectors - BigInt(PARTITION_START)) * BigInt(SECTOR);
  await must(run, 'mkfs.ext4', [
    '-q',
    '-F',
    '-U',
    rootUuid,
    '-L',
    'root',
    '-E',
    `offset=${PARTITION_START * SECTOR}`,
    '-d',
    args.tree,
    args.disk,
    `${partBytes / 1024n}k`,
  ]);

  // GRUB's core image finds the root filesystem by UUID, then reads /boot/grub/grub.cfg from it.
  const early = join(args.workdir, 'grub-early.cfg');
  await writeFile(early, `search --no-floppy --fs-uuid --set=root ${rootUuid}\nset prefix=($root)/boot/grub\nconfigfile $prefix/grub.cfg\n`);
  const core = join(args.workdir, 'core.img');
  await must(run, 'grub-mkimage', ['-O', 'i386-pc', '-o', core, '-c', early, '-p', '/boot/grub', ...CORE_MODULES]);
  const coreImage = await readFile(core);
  if (coreImage.length > (PARTITION_START - 1) * SECTOR) throw new Error(`GRUB core image (${coreImage.length} bytes) does not fit before the partition`);
  const bootImage = await readFile(join(GRUB_PC_DIR, 'boot.img'));

  const disk = await open(args.disk, 'r+');
  try {
    // Boot code only: the partition table and signature (bytes 440..511) stay.
    await disk.write(bootImage, 0, 440, 0);
    await disk.write(coreImage, 0, coreImage.length, SECTOR);
  } finally {
    await disk.close();
  }
  return layout;
}
