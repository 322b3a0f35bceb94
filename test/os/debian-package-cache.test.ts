import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneCache } from '../../src/os/debian/package-cache.js';
import { tempDir } from './helpers.js';

let dir: { path: string; cleanup: () => Promise<void> };
let n = 0;
beforeAll(async () => {
  dir = await tempDir('debian-cache');
});
afterAll(async () => dir.cleanup());

const DAY = 86_400;
const NOW = Math.floor(Date.now() / 1000);

interface Entry {
  name: string;
  size: number;
  /** Seconds before now of the last access and modification. */
  atimeAgo: number;
  mtimeAgo: number;
}

/** A fresh cache directory holding `entries`, with their times set. */
async function cacheWith(entries: Entry[]): Promise<string> {
  const cache = join(dir.path, `cache-${++n}`);
  await mkdir(cache);
  for (const e of entries) {
    const path = join(cache, e.name);
    await writeFile(path, Buffer.alloc(e.size, 0x61));
    await utimes(path, NOW - e.atimeAgo, NOW - e.mtimeAgo);
  }
  return cache;
}

const deb = (name: string, size: number, ago: number, atimeAgo = ago): Entry => ({ name, size, atimeAgo, mtimeAgo: ago });

describe('pruning the package cache', () => {
  it.each<[string, Entry[], number, string[], number]>([
    ['removes nothing when it fits', [deb('a.deb', 100, 3 * DAY), deb('b.deb', 100, DAY)], 200, [], 200],
    ['removes the oldest first until it fits', [deb('new.deb', 100, DAY), deb('old.deb', 100, 5 * DAY), deb('mid.deb', 100, 3 * DAY)], 150, ['old.deb', 'mid.deb'], 100],
    ['stops as soon as it fits', [deb('new.deb', 100, DAY), deb('old.deb', 100, 5 * DAY), deb('mid.deb', 100, 3 * DAY)], 250, ['old.deb'], 200],
    ['counts a recent read as use (atime)', [deb('read.deb', 100, 9 * DAY, 60), deb('written.deb', 100, 2 * DAY)], 100, ['written.deb'], 100],
    ['counts a recent write as use (mtime)', [deb('written.deb', 100, 60, 9 * DAY), deb('read.deb', 100, 9 * DAY, 2 * DAY)], 100, ['read.deb'], 100],
    ['breaks ties by name', [deb('b.deb', 100, DAY), deb('a.deb', 100, DAY), deb('c.deb', 100, DAY)], 100, ['a.deb', 'b.deb'], 100],
    ['removes a large old package rather than many small new ones', [deb('big.deb', 1000, 4 * DAY), deb('s1.deb', 10, DAY), deb('s2.deb', 10, DAY)], 500, ['big.deb'], 20],
    ['empties it with a bound of 0', [deb('a.deb', 10, DAY), deb('b.deb', 20, 2 * DAY)], 0, ['b.deb', 'a.deb'], 0],
  ])('%s', async (_what, entries, maxBytes, removed, bytes) => {
    const cache = await cacheWith(entries);
    const result = await pruneCache({ dir: cache, maxBytes });
    expect(result).toEqual({ removed, bytes });
    const left = entries.map((e) => e.name).filter((x) => !removed.includes(x));
    expect((await readdir(cache)).sort()).toEqual(left.sort());
  });

  it('leaves files that are not packages, hidden in-flight copies and directories alone and does not count them', async () => {
    const cache = await cacheWith([
      deb('a.deb', 100, 2 * DAY),
      deb('notes.txt', 5000, 9 * DAY),
      deb('.b.deb', 5000, 9 * DAY),
      deb('.c.deb.4242', 5000, 9 * DAY),
      deb('x.deb.partial', 5000, 9 * DAY),
    ]);
    await mkdir(join(cache, 'dir.deb'));
    expect(await pruneCache({ dir: cache, maxBytes: 100 })).toEqual({ removed: [], bytes: 100 });
    expect(await pruneCache({ dir: cache, maxBytes: 0 })).toEqual({ removed: ['a.deb'], bytes: 0 });
    expect((await readdir(cache)).sort()).toEqual(['.b.deb', '.c.deb.4242', 'dir.deb', 'notes.txt', 'x.deb.partial']);
  });

  it('treats a missing directory as an empty cache', async () => {
    expect(await pruneCache({ dir: join(dir.path, 'never-made'), maxBytes: 0 })).toEqual({ removed: [], bytes: 0 });
  });

  it('treats an empty directory as an empty cache', async () => {
    expect(await pruneCache({ dir: await cacheWith([]), maxBytes: 0 })).toEqual({ removed: [], bytes: 0 });
  });
});
