import { randomBytes } from 'node:crypto';
import { appendFile, copyFile, rename, rm, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { newcArchive, type CpioEntry } from './cpio.js';
import { MediaError } from './errors.js';

const gzip = promisify(gzipCallback);

export interface AppendOptions {
  /** Compress the appended archive with gzip (the default) or append it uncompressed. */
  compression?: 'gzip' | 'none';
}

export interface AppendResult {
  /** Size of the original initrd; the appended archive starts at `appendedOffset`. */
  originalBytes: number;
  /** Where the appended archive starts (the original, then NUL padding to a 4-byte boundary). */
  appendedOffset: number;
  totalBytes: number;
}

/**
 * Writes `outPath` = the original initrd, unchanged, followed by an extra
 * newc cpio archive holding `files` (e.g. `/preseed.cfg`, `/ks.cfg`). The
 * kernel unpacks concatenated archives, compressed or not, one after the
 * other, so the answer file appears in the installer's root filesystem
 * without unpacking the original. NULs between archives are skipped by the
 * kernel; they align an uncompressed archive to the 4 bytes it requires.
 * The output is written under a temporary name and renamed into place.
 */
export async function appendToInitrd(originalPath: string, outPath: string, files: CpioEntry[], options: AppendOptions = {}): Promise<AppendResult> {
  if (files.length === 0) throw new MediaError('invalid_argument', 'nothing to append to the initrd');
  const original = await stat(originalPath).catch(() => null);
  if (!original?.isFile()) throw new MediaError('invalid_argument', `initrd ${originalPath} is not a file`);
  const archive = newcArchive(files);
  const appended = (options.compression ?? 'gzip') === 'gzip' ? await gzip(archive) : archive;
  const padding = (4 - (original.size % 4)) % 4;
  const tmp = `${outPath}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    await copyFile(originalPath, tmp);
    await appendFile(tmp, Buffer.concat([Buffer.alloc(padding), appended]));
    await rename(tmp, outPath);
  } finally {
    await rm(tmp, { force: true });
  }
  return { originalBytes: original.size, appendedOffset: original.size + padding, totalBytes: original.size + padding + appended.length };
}
