import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleDisk, findKernel, prepareTreeForBoot } from '../../src/os/debian/disk.js';
import { localRunner } from '../../src/os/media/tools.js';
import type { RunResult } from '../../src/os/plugin.js';
import { findKernel as hostKernel } from '../guest/build-guest.js';
import { tempDir } from './helpers.js';
import { describeWithTools, file, itWithTools, tool as hostTool } from '../tools.js';

const GRUB_PC = '/usr/lib/grub/i386-pc';
const MiB = 1024 * 1024;
const DISK_BYTES = 64 * MiB;
const PART_OFFSET = 2048 * 512;
const ROOT_UUID = '3f1c2b4a-7d6e-4c5b-9a8f-0e1d2c3b4a59';
const BOOT_MARKER = 'IMAGEFACTORY-DISKTEST-BOOTED';

let dir: { path: string; cleanup: () => Promise<void> };
let qemu: ChildProcess | null = null;

beforeAll(async () => {
  dir = await tempDir('debian-disk');
});
afterAll(async () => {
  if (qemu?.pid !== undefined && qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL');
  await dir.cleanup();
});

/** The host's Debian kernel, for the tiny tree (package linux-image-amd64). */
const HOST_KERNEL = { name: 'linux-image-amd64', command: 'sh', args: ['-c', 'ls /boot/vmlinuz-* >/dev/null 2>&1'] };
const ASSEMBLY_TOOLS = [hostTool('sfdisk'), hostTool('mkfs.ext4', ['-V']), hostTool('grub-mkimage'), hostTool('debugfs', ['-V']), hostTool('blkid', ['-V']), file(join(GRUB_PC, 'boot.img'), 'grub-pc-bin')];
const TREE_TOOLS = [HOST_KERNEL, file('/bin/busybox', 'busybox-static'), hostTool('cpio')];

function tool(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** A file of the ext4 filesystem on the disk's partition, read with debugfs (nothing is mounted). */
function fsCat(disk: string, path: string): string {
  return tool('debugfs', ['-R', `cat ${path}`, `${disk}?offset=${PART_OFFSET}`]);
}

/** The first `bytes` bytes of a file. */
async function readHead(path: string, bytes: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** A busybox initramfs (gzipped newc) whose /init prints the kernel command line and a marker, then powers off. */
async function tinyInitrd(out: string): Promise<void> {
  const root = join(dir.path, 'initrd-root');
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'proc'));
  await copyFile('/bin/busybox', join(root, 'bin/busybox'));
  await writeFile(
    join(root, 'init'),
    `#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\necho "CMDLINE: $(/bin/busybox cat /proc/cmdline)"\necho "${BOOT_MARKER}"\n/bin/busybox poweroff -f\n`,
    { mode: 0o755 },
  );
  const r = spawnSync('sh', ['-c', `cd "$1" && find . | cpio -o -H newc --quiet --owner=0:0 | gzip -1 > "$2"`, 'sh', root, out]);
  expect(r.status, r.stderr?.toString()).toBe(0);
}

/** A root tree with just enough to boot: the host's kernel, a tiny initramfs, /etc. */
async function bootableTree(name: string): Promise<{ tree: string; version: string; kernel: string }> {
  const { version, kernel } = hostKernel();
  const tree = join(dir.path, name);
  await mkdir(join(tree, 'boot'), { recursive: true });
  await mkdir(join(tree, 'etc'), { recursive: true });
  await copyFile(kernel, join(tree, 'boot', `vmlinuz-${version}`));
  await tinyInitrd(join(tree, 'boot', `initrd.img-${version}`));
  return { tree, version, kernel };
}

async function emptyTree(name: string, boot: string[]): Promise<string> {
  const tree = join(dir.path, name);
  await mkdir(join(tree, 'boot'), { recursive: true });
  await mkdir(join(tree, 'etc'), { recursive: true });
  for (const f of boot) await writeFile(join(tree, 'boot', f), f);
  return tree;
}

describe('finding the kernel', () => {
  it('fails without a kernel, naming the package the bootstrap lacks', async () => {
    const tree = await emptyTree('no-kernel', ['config-6.1.0-18-amd64', 'System.map-6.1.0-18-amd64']);
    await expect(findKernel(tree)).rejects.toThrow(`no kernel in ${join(tree, 'boot')}: the bootstrap must include a linux-image package`);
  });

  it('fails with a kernel but no initrd of its version', async () => {
    const tree = await emptyTree('no-initrd', ['vmlinuz-6.1.0-18-amd64', 'initrd.img-6.1.0-17-amd64']);
    await expect(findKernel(tree)).rejects.toThrow('no initrd.img-6.1.0-18-amd64 next to vmlinuz-6.1.0-18-amd64');
  });

  it.each<[string[], { kernel: string; initrd: string }]>([
    [['vmlinuz-6.1.0-18-amd64', 'initrd.img-6.1.0-18-amd64', 'config-6.1.0-18-amd64'], { kernel: 'vmlinuz-6.1.0-18-amd64', initrd: 'initrd.img-6.1.0-18-amd64' }],
    [['vmlinuz-5.10.0-28-amd64', 'initrd.img-5.10.0-28-amd64', 'vmlinuz-6.1.0-18-amd64', 'initrd.img-6.1.0-18-amd64'], { kernel: 'vmlinuz-6.1.0-18-amd64', initrd: 'initrd.img-6.1.0-18-amd64' }],
    // Numbers compare as numbers, not as text: -10 is newer than -9, 6.10 newer than 6.9.
    [['vmlinuz-6.1.0-9-amd64', 'initrd.img-6.1.0-9-amd64', 'vmlinuz-6.1.0-10-amd64', 'initrd.img-6.1.0-10-amd64'], { kernel: 'vmlinuz-6.1.0-10-amd64', initrd: 'initrd.img-6.1.0-10-amd64' }],
    [['vmlinuz-6.10.0-1-cloud-amd64', 'initrd.img-6.10.0-1-cloud-amd64', 'vmlinuz-6.9.0-3-cloud-amd64', 'initrd.img-6.9.0-3-cloud-amd64'], { kernel: 'vmlinuz-6.10.0-1-cloud-amd64', initrd: 'initrd.img-6.10.0-1-cloud-amd64' }],
  ])('picks the newest kernel with its initrd from %j', async (files, expected) => {
    const tree = await emptyTree(`kernels-${files.map((f) => f.replace(/\W/g, '_')).join('-')}`, files);
    expect(await findKernel(tree)).toEqual(expected);
  });
});

describeWithTools([file(join(GRUB_PC, 'normal.mod'), 'grub-pc-bin')], 'preparing the tree for boot', () => {
  it('writes fstab by UUID, GRUB modules and a GRUB config with a serial console', async () => {
    const tree = await emptyTree('prepare', ['vmlinuz-6.1.0-18-amd64', 'initrd.img-6.1.0-18-amd64']);
    const layout = await prepareTreeForBoot(tree, ROOT_UUID, 'quiet  ');
    expect(layout).toEqual({ rootUuid: ROOT_UUID, kernel: 'vmlinuz-6.1.0-18-amd64', initrd: 'initrd.img-6.1.0-18-amd64' });
    expect(await readFile(join(tree, 'etc/fstab'), 'utf8')).toBe(`UUID=${ROOT_UUID} / ext4 errors=remount-ro 0 1\n`);

    const cfg = (await readFile(join(tree, 'boot/grub/grub.cfg'), 'utf8')).split('\n').map((l) => l.trim());
    expect(cfg).toContain('serial --unit=0 --speed=115200');
    expect(cfg).toContain('terminal_output console serial');
    expect(cfg).toContain(`search --no-floppy --fs-uuid --set=root ${ROOT_UUID}`);
    expect(cfg).toContain(`linux /boot/vmlinuz-6.1.0-18-amd64 root=UUID=${ROOT_UUID} ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 no_timer_check quiet`);
    expect(cfg).toContain('initrd /boot/initrd.img-6.1.0-18-amd64');

    const wanted = readdirSync(GRUB_PC).filter((f) => f.endsWith('.mod') || f.endsWith('.lst')).sort();
    expect((await readdir(join(tree, 'boot/grub/i386-pc'))).sort()).toEqual(wanted);
  });
});

/** A runner standing in for the tools: records calls, answers from `answer`. */
function fakeRun(answer: (command: string, args: string[]) => Promise<Partial<RunResult>> | Partial<RunResult>) {
  const calls: Array<{ command: string; args: string[]; input: string | undefined }> = [];
  const run = async (command: string, args: string[], options?: { input?: string }): Promise<RunResult> => {
    calls.push({ command, args, input: options?.input });
    return { code: 0, stdout: '', stderr: '', ...(await answer(command, args)) };
  };
  return { run, calls };
}

describeWithTools([file(join(GRUB_PC, 'boot.img'), 'grub-pc-bin')], 'assembling a disk, with the tools faked', () => {
  it('partitions from sector 2048 and makes the filesystem at that offset, sized to the partition', async () => {
    const tree = await emptyTree('fake-args', ['vmlinuz-1', 'initrd.img-1']);
    const disk = join(dir.path, 'fake-args.raw');
    const { run, calls } = fakeRun((command) => (command === 'mkfs.ext4' ? { code: 1, stderr: 'one\ntwo\nthree\nfour\n' } : {}));
    await expect(assembleDisk(run, { tree, disk, sizeBytes: 64n * 1048576n, workdir: dir.path, rootUuid: ROOT_UUID })).rejects.toThrow('mkfs.ext4 exited with 1: two / three / four');
    expect(calls).toEqual([
      { command: 'sfdisk', args: ['--quiet', '--no-reread', '--no-tell-kernel', disk], input: 'label: dos\nstart=2048, type=83, bootable\n' },
      { command: 'mkfs.ext4', args: ['-q', '-F', '-U', ROOT_UUID, '-L', 'root', '-E', 'offset=1048576', '-d', tree, disk, '64512k'], input: undefined },
    ]);
    expect((await stat(disk)).size).toBe(DISK_BYTES);
  });

  it('reports a failing partitioning with its output', async () => {
    const tree = await emptyTree('fake-sfdisk', ['vmlinuz-1', 'initrd.img-1']);
    const { run } = fakeRun((command) => (command === 'sfdisk' ? { code: 2, stdout: 'sfdisk: cannot open disk\n' } : {}));
    await expect(assembleDisk(run, { tree, disk: join(dir.path, 'fake-sfdisk.raw'), sizeBytes: 8n * 1048576n, workdir: dir.path })).rejects.toThrow('sfdisk exited with 2: sfdisk: cannot open disk');
  });

  it.each([
    [2047 * 512, 'fits'],
    [2047 * 512 + 1, 'is refused'],
  ])('a GRUB core image of %i bytes %s before the partition', async (bytes, outcome) => {
    const tree = await emptyTree(`fake-core-${bytes}`, ['vmlinuz-1', 'initrd.img-1']);
    const disk = join(dir.path, `fake-core-${bytes}.raw`);
    const { run } = fakeRun(async (command, args) => {
      if (command === 'grub-mkimage') await writeFile(args[args.indexOf('-o') + 1]!, Buffer.alloc(bytes, 0xcc));
      return {};
    });
    const assembled = assembleDisk(run, { tree, disk, sizeBytes: 4n * 1048576n, workdir: dir.path, rootUuid: ROOT_UUID });
    if (outcome === 'fits') {
      await expect(assembled).resolves.toMatchObject({ rootUuid: ROOT_UUID });
      const head = await readHead(disk, PART_OFFSET);
      expect(head.subarray(512, 512 + bytes).every((b) => b === 0xcc)).toBe(true);
      expect(head.subarray(0, 440)).toEqual((await readFile(join(GRUB_PC, 'boot.img'))).subarray(0, 440));
    } else {
      await expect(assembled).rejects.toThrow(`GRUB core image (${bytes} bytes) does not fit before the partition`);
    }
  });
});

describeWithTools([...ASSEMBLY_TOOLS, ...TREE_TOOLS], 'a disk assembled from a tiny tree', () => {
  let disk: string;
  let version: string;
  let hostKernelPath: string;

  beforeAll(async () => {
    const t = await bootableTree('tree');
    version = t.version;
    hostKernelPath = t.kernel;
    disk = join(dir.path, 'disk.raw');
    const workdir = join(dir.path, 'work');
    await mkdir(workdir);
    const layout = await assembleDisk(localRunner(), { tree: t.tree, disk, sizeBytes: BigInt(DISK_BYTES), workdir, rootUuid: ROOT_UUID });
    expect(layout).toEqual({ rootUuid: ROOT_UUID, kernel: `vmlinuz-${version}`, initrd: `initrd.img-${version}` });
  });

  it('has the requested size and is sparse', async () => {
    const s = await stat(disk);
    expect(s.size).toBe(DISK_BYTES);
    expect(s.blocks * 512).toBeLessThan(DISK_BYTES / 2);
  });

  it('has one bootable Linux partition from sector 2048 to the end', () => {
    const table = JSON.parse(tool('sfdisk', ['--json', disk])) as { partitiontable: { label: string; partitions: Array<Record<string, unknown>> } };
    expect(table.partitiontable.label).toBe('dos');
    expect(table.partitiontable.partitions).toEqual([{ node: `${disk}1`, start: 2048, size: DISK_BYTES / 512 - 2048, type: '83', bootable: true }]);
  });

  it('holds a clean ext4 filesystem labelled root with the UUID, filling the partition exactly', () => {
    const probe = tool('blkid', ['-p', '-O', String(PART_OFFSET), '-o', 'export', disk]);
    expect(probe).toContain(`UUID=${ROOT_UUID}\n`);
    expect(probe).toContain('LABEL=root\n');
    expect(probe).toContain('TYPE=ext4\n');
    const header = tool('dumpe2fs', ['-h', `${disk}?offset=${PART_OFFSET}`]);
    const count = Number(/^Block count:\s+(\d+)$/m.exec(header)?.[1]);
    const size = Number(/^Block size:\s+(\d+)$/m.exec(header)?.[1]);
    expect(count * size).toBe(DISK_BYTES - PART_OFFSET);
    const fsck = spawnSync('e2fsck', ['-f', '-n', `${disk}?offset=${PART_OFFSET}`], { encoding: 'utf8' });
    expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0);
  });

  it('names the filesystem UUID in fstab and grub.cfg, with a serial console', () => {
    expect(fsCat(disk, '/etc/fstab')).toBe(`UUID=${ROOT_UUID} / ext4 errors=remount-ro 0 1\n`);
    const cfg = fsCat(disk, '/boot/grub/grub.cfg');
    expect(cfg).toContain(`search --no-floppy --fs-uuid --set=root ${ROOT_UUID}\n`);
    expect(cfg).toContain(`linux /boot/vmlinuz-${version} root=UUID=${ROOT_UUID} ro console=tty0 console=ttyS0,115200n8`);
    expect(cfg).toContain(`initrd /boot/initrd.img-${version}\n`);
    expect(cfg).toContain('serial --unit=0 --speed=115200\n');
  });

  it('carries the tree into the filesystem byte for byte', async () => {
    const out = join(dir.path, 'kernel-from-disk');
    tool('debugfs', ['-R', `dump /boot/vmlinuz-${version} ${out}`, `${disk}?offset=${PART_OFFSET}`]);
    expect((await readFile(out)).equals(await readFile(hostKernelPath))).toBe(true);
    expect(fsCat(disk, '/boot/grub/i386-pc/moddep.lst').length).toBeGreaterThan(0);
  });

  it('has GRUB boot code in the MBR, the core image right after it and the boot signature kept', async () => {
    const fh = await readHead(disk, 1024);
    const bootImg = await readFile(join(GRUB_PC, 'boot.img'));
    const diskboot = await readFile(join(GRUB_PC, 'diskboot.img'));
    expect(fh.subarray(0, 440)).toEqual(bootImg.subarray(0, 440));
    expect([fh[510], fh[511]]).toEqual([0x55, 0xaa]);
    // diskboot.img starts the core image; grub-mkimage patches only its block list at the end of the sector.
    expect(fh.subarray(512, 512 + 500)).toEqual(diskboot.subarray(0, 500));
    // Partition entry 1: active, type 0x83, from LBA 2048.
    expect(fh[446]).toBe(0x80);
    expect(fh[446 + 4]).toBe(0x83);
    expect(fh.readUInt32LE(446 + 8)).toBe(2048);
  });

  itWithTools([hostTool('qemu-system-x86_64')], 'boots under qemu by its own GRUB into the kernel and initrd on the filesystem', async () => {
    const serial = join(dir.path, 'serial.log');
    // No -kernel: SeaBIOS runs the MBR, GRUB reads grub.cfg from the ext4 partition.
    qemu = spawn(
      'qemu-system-x86_64',
      ['-accel', 'tcg', '-m', '256', '-smp', '1', '-nodefaults', '-display', 'none', '-no-reboot', '-serial', `file:${serial}`, '-drive', `file=${disk},format=raw,if=virtio`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    qemu.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const child = qemu;
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    const log = await readFile(serial, 'utf8').catch(() => '');
    expect(code, `qemu: ${stderr}\nserial:\n${log.slice(-3000)}`).toBe(0);
    expect(log).toContain(BOOT_MARKER);
    const cmdline = /^CMDLINE: (.*)$/m.exec(log)?.[1]?.trim();
    expect(cmdline).toBe(`BOOT_IMAGE=/boot/vmlinuz-${version} root=UUID=${ROOT_UUID} ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 no_timer_check`);
  }, 60_000);
});
