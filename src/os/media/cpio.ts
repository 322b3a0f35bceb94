/**
 * A writer for the SVR4 "newc" cpio format, the one the Linux kernel
 * unpacks as an initramfs (and that `cpio -H newc` writes): a 110-byte
 * ASCII header per entry, the NUL-terminated name, the data, each padded
 * to 4 bytes, and a `TRAILER!!!` entry at the end.
 */

export interface CpioEntry {
  /** Path inside the archive; a leading `/` is dropped (`/ks.cfg` is stored as `ks.cfg`, unpacked at `/ks.cfg`). */
  name: string;
  /** File content; omit for a directory. */
  data?: Buffer | string;
  /** Permission bits; 0644 for files, 0755 for directories. */
  mode?: number;
  /** Seconds since the epoch; 0 by default, so the same input gives the same archive. */
  mtime?: number;
}

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const TRAILER = 'TRAILER!!!';

/** The archive of `entries`; parent directories that are not listed are added before their files. */
export function newcArchive(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const seenDirs = new Set<string>();
  let ino = 1;
  const push = (name: string, mode: number, data: Buffer, mtime: number, nlink: number) => {
    parts.push(header({ ino: ino++, mode, nlink, mtime, fileSize: data.length, nameSize: Buffer.byteLength(name) + 1 }));
    parts.push(padded(Buffer.concat([Buffer.from(name, 'utf8'), Buffer.alloc(1)]), 110));
    if (data.length > 0) parts.push(padded(data, 0));
  };
  for (const entry of entries) {
    const name = entry.name.replace(/^\/+/, '').replace(/\/+$/, '');
    if (name === '' || name.split('/').some((part) => part === '..' || part === '.' || part === '')) {
      throw new Error(`cpio entry name ${JSON.stringify(entry.name)} must be a plain relative path`);
    }
    const mtime = entry.mtime ?? 0;
    const segments = name.split('/');
    for (let i = 1; i < segments.length; i++) {
      const dir = segments.slice(0, i).join('/');
      if (seenDirs.has(dir)) continue;
      seenDirs.add(dir);
      push(dir, S_IFDIR | 0o755, Buffer.alloc(0), mtime, 2);
    }
    if (entry.data === undefined) {
      if (seenDirs.has(name)) continue;
      seenDirs.add(name);
      push(name, S_IFDIR | (entry.mode ?? 0o755), Buffer.alloc(0), mtime, 2);
    } else {
      const data = typeof entry.data === 'string' ? Buffer.from(entry.data, 'utf8') : entry.data;
      push(name, S_IFREG | (entry.mode ?? 0o644), data, mtime, 1);
    }
  }
  push(TRAILER, 0, Buffer.alloc(0), 0, 1);
  return Buffer.concat(parts);
}

function header(h: { ino: number; mode: number; nlink: number; mtime: number; fileSize: number; nameSize: number }): Buffer {
  const hex = (n: number) => {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`cpio header field ${n} does not fit in 32 bits`);
    return n.toString(16).padStart(8, '0');
  };
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
  const fields = [h.ino, h.mode, 0, 0, h.nlink, h.mtime, h.fileSize, 0, 0, 0, 0, h.nameSize, 0];
  return Buffer.from(`070701${fields.map(hex).join('')}`, 'ascii');
}

/** `data` followed by NULs so that `offset + length` is a multiple of 4. */
function padded(data: Buffer, offset: number): Buffer {
  const pad = (4 - ((offset + data.length) % 4)) % 4;
  return pad === 0 ? data : Buffer.concat([data, Buffer.alloc(pad)]);
}
