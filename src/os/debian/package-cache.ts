import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** The shared `.deb` directory of bootstrap builds and its size bound. */
export interface PackageCache {
  dir: string;
  maxBytes: number;
}

/**
 * Removes the least recently used packages until the cache fits its bound.
 * Use is the later of access and modification time: a package copied into
 * a build is read, one just downloaded is written. Returns what was removed.
 */
export async function pruneCache(cache: PackageCache): Promise<{ removed: string[]; bytes: number }> {
  const names = await readdir(cache.dir).catch(() => [] as string[]);
  const entries: { name: string; size: number; used: number }[] = [];
  for (const name of names) {
    if (!name.endsWith('.deb') || name.startsWith('.')) continue;
    const s = await stat(join(cache.dir, name)).catch(() => null);
    if (s?.isFile()) entries.push({ name, size: s.size, used: Math.max(s.atimeMs, s.mtimeMs) });
  }
  let bytes = entries.reduce((n, e) => n + e.size, 0);
  const removed: string[] = [];
  for (const e of entries.sort((a, b) => a.used - b.used || a.name.localeCompare(b.name))) {
    if (bytes <= cache.maxBytes) break;
    await rm(join(cache.dir, e.name), { force: true });
    bytes -= e.size;
    removed.push(e.name);
  }
  return { removed, bytes };
}
