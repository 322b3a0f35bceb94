import { realpath } from 'node:fs/promises';
import { allowedFileUrlPath, isInside } from '../tdl/values.js';

/**
 * Where a template's `file:` URL may be read on the build host: its real
 * path (symlinks resolved, on both sides) when that is inside one of the
 * configuration's `file_url_dirs`; otherwise why not. Validation checked
 * the path as written; this is the check at the moment of reading.
 */
export async function allowedHostFile(url: string, dirs: readonly string[]): Promise<{ path: string } | { problem: 'forbidden' | 'missing' }> {
  const path = allowedFileUrlPath(url, dirs);
  if (!path) return { problem: 'forbidden' };
  const real = await realpath(path).catch(() => null);
  if (!real) return { problem: 'missing' };
  const realDirs = await Promise.all(dirs.map((d) => realpath(d).catch(() => null)));
  return realDirs.some((d) => d !== null && isInside(real, d)) ? { path: real } : { problem: 'forbidden' };
}
