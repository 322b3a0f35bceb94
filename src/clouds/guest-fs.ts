import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StepError } from '../os/plugin.js';
import type { CloudStepContext } from './types.js';

/**
 * The image's root filesystem read and written with e2fsprogs' debugfs on an
 * image view (./image-view.ts), at the partition's byte offset: no mount.
 * Only ext2/3/4 root filesystems are handled (what the OS plugins build).
 */

type Ctx = Pick<CloudStepContext, 'run' | 'workdir'>;

/** Partition types that can hold a Linux root filesystem (MBR 83, GPT Linux data and x86-64 root). */
const LINUX_TYPES = new Set(['83', '0FC63DAF-8483-4772-8E79-3D69D8477DE4', '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709']);

export interface GuestFs {
  /** `view?offset=N`: the device argument e2fsprogs tools take. */
  device: string;
  offset: number;
  /** Reads a file of the guest (following no symlink), or null if it does not exist. */
  read(path: string): Promise<Buffer | null>;
  /** Copies a file of the guest to the host (`dump -p`: mode and owner kept); false if it does not exist. */
  copyOut(path: string, hostFile: string): Promise<boolean>;
  /** Names in a directory of the guest (without `.` and `..`), or null if it does not exist. */
  list(dir: string): Promise<string[] | null>;
  /** Runs debugfs commands with the filesystem opened for writing; fails on any command error. */
  write(commands: string[]): Promise<void>;
}

interface SfdiskPartition {
  start: number;
  size: number;
  type: string;
}

/** The first Linux partition (or the whole disk, when it has no partition table) holding /etc/os-release. */
export async function openGuestFs(ctx: Ctx, viewPath: string): Promise<GuestFs> {
  const table = await ctx.run('sfdisk', ['-J', viewPath]);
  const candidates: number[] = [];
  if (table.code === 0 && table.stdout.trim()) {
    const parsed = JSON.parse(table.stdout) as { partitiontable: { sectorsize?: number; partitions?: SfdiskPartition[] } };
    const sector = parsed.partitiontable.sectorsize ?? 512;
    for (const p of parsed.partitiontable.partitions ?? []) if (LINUX_TYPES.has(p.type.toUpperCase())) candidates.push(p.start * sector);
  } else candidates.push(0);
  for (const offset of candidates) {
    const fs = guestFsAt(ctx, viewPath, offset);
    if (await fs.read('/etc/os-release').catch(() => null)) return fs;
  }
  throw new StepError('root_fs_not_found', 'the image has no ext2/3/4 partition with /etc/os-release (a root filesystem this plugin can adapt)', { offsets: candidates });
}

let dumps = 0;

export function guestFsAt(ctx: Ctx, viewPath: string, offset: number): GuestFs {
  const device = `${viewPath}?offset=${offset}`;
  const fs: GuestFs = {
    device,
    offset,
    async copyOut(path, hostFile) {
      await rm(hostFile, { force: true });
      const r = await ctx.run('debugfs', ['-R', `dump -p ${quote(path)} ${quote(hostFile)}`, device]);
      if (r.code !== 0) throw new StepError('guest_fs_failed', `debugfs could not open the root filesystem: ${r.stderr.trim()}`);
      if (/File not found|not found by ext2_lookup/.test(r.stderr)) return false;
      return true;
    },
    async read(path) {
      // dump to a file, not cat: the runner keeps only the tail of a program's output.
      const out = join(ctx.workdir, `.debugfs-dump-${process.pid}-${dumps++}`);
      try {
        return (await fs.copyOut(path, out)) ? await readFile(out).catch(() => null) : null;
      } finally {
        await rm(out, { force: true });
      }
    },
    async list(dir) {
      const r = await ctx.run('debugfs', ['-R', `ls -p ${quote(dir)}`, device]);
      if (/File not found|not found by ext2_lookup/.test(r.stderr)) return null;
      // `ls -p`: one `/inode/mode/uid/gid/name/size/` line per entry.
      return r.stdout
        .split('\n')
        .map((l) => /^\/\d+\/\d+\/\d+\/\d+\/(.*)\/\d*\/$/.exec(l)?.[1])
        .filter((n): n is string => n !== undefined && n !== '.' && n !== '..');
    },
    async write(commands) {
      const r = await ctx.run('debugfs', ['-w', '-f', '-', device], { input: commands.join('\n') + '\n' });
      // debugfs goes on after a failed command and exits 0: its complaints on stderr are the failures.
      const complaints = r.stderr
        .split('\n')
        .filter((l) => l.trim() && !/^debugfs \d/.test(l) && !/^Allocated inode/.test(l));
      if (r.code !== 0 || complaints.length) throw new StepError('guest_fs_failed', `debugfs could not change the root filesystem: ${complaints.join(' / ') || r.stderr.trim()}`);
    },
  };
  return fs;
}

/** A path as a debugfs argument: debugfs splits on spaces and honours double quotes. */
export function quote(path: string): string {
  if (/["\n]/.test(path)) throw new StepError('guest_fs_failed', `path ${JSON.stringify(path)} cannot be passed to debugfs`);
  return /\s/.test(path) ? `"${path}"` : path;
}

/** Installed packages from the guest's dpkg status file (`Status: install ok installed`). */
export function installedPackages(status: string): Set<string> {
  const installed = new Set<string>();
  for (const stanza of status.split(/\n\s*\n/)) {
    const name = /^Package: *(\S+)/m.exec(stanza)?.[1];
    const st = /^Status: *(.+)$/m.exec(stanza)?.[1]?.trim();
    if (name && st === 'install ok installed') installed.add(name);
  }
  return installed;
}
