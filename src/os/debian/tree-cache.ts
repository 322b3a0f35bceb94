import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeTree } from '../../fs/remove-tree.js';
import type { RunResult } from '../plugin.js';

/**
 * Bootstrapped root trees, kept between builds. mmdebstrap's work (≈ 30–90 s)
 * depends only on what it installs and from where: two templates that
 * differ in files, commands or the root password start from the same tree.
 * A tree is keyed by the complete mmdebstrap command (release, architecture,
 * kernel, packages, repositories, keyring) and the date of each
 * repository's signed Release file, so a mirror that moved on is a miss.
 * Trees are copied out (never used in place); the least recently used ones
 * go when the cache outgrows its bound, unless a build is copying them.
 */

export interface TreeCacheOptions {
  dir: string;
  maxBytes: number;
}

export interface TreeKeyParts {
  /** The mmdebstrap arguments that decide the tree (not its output path, not the package-cache hooks). */
  args: string[];
  /** The text of every apt source file given to mmdebstrap. */
  sources: string[];
  /** `Date:` of each repository's InRelease, in the order of `sources` (the mirror first). */
  releaseDates: string[];
}

type Run = (command: string, args: string[]) => Promise<RunResult>;

interface Meta {
  key: string;
  bytes: number;
  created: string;
}

const META = 'meta.json';
const TREE = 'tree';

export function treeKey(parts: TreeKeyParts): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/** The `Date:` field of a signed Release file (InRelease), or null. */
export function releaseFileDate(text: string): string | null {
  return /^Date:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? null;
}

export class TreeCache {
  /** Entries being copied out by a build of this process: never evicted meanwhile. */
  private readonly inUse = new Map<string, number>();

  constructor(readonly options: TreeCacheOptions) {}

  /** The directory of an entry; what else is kept with a tree (boot-checkpoint.ts) lives in it and goes with it. */
  entry(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`not a tree key: ${key}`);
    return join(this.options.dir, key);
  }

  async has(key: string): Promise<boolean> {
    return (await stat(join(this.entry(key), META)).catch(() => null)) !== null;
  }

  /** Copies the cached tree into `into` (which must be empty); false on a miss. */
  async restore(key: string, into: string, run: Run): Promise<boolean> {
    if (!(await this.has(key))) return false;
    this.inUse.set(key, (this.inUse.get(key) ?? 0) + 1);
    try {
      const r = await run('cp', ['-a', '--reflink=auto', `${join(this.entry(key), TREE)}/.`, into]);
      if (r.code !== 0) throw new Error(`copying the cached tree failed: ${r.stderr.trim()}`);
      // Use is its modification time: a restored entry is the most recently used.
      await this.touch(key);
      return true;
    } finally {
      const n = (this.inUse.get(key) ?? 1) - 1;
      if (n) this.inUse.set(key, n);
      else this.inUse.delete(key);
    }
  }

  /**
   * Keeps a copy of `tree` under `key`. A cache that cannot take it (full,
   * read-only) costs a later build a bootstrap, never this build.
   */
  async store(key: string, tree: string, run: Run, log: (line: string) => void): Promise<void> {
    const entry = this.entry(key);
    const partial = `${entry}.partial-${process.pid}-${Date.now()}`;
    try {
      if (await this.has(key)) return;
      await mkdir(join(partial, TREE), { recursive: true, mode: 0o700 });
      const r = await run('cp', ['-a', '--reflink=auto', `${tree}/.`, join(partial, TREE)]);
      if (r.code !== 0) throw new Error(r.stderr.trim());
      const du = await run('du', ['-sb', join(partial, TREE)]);
      const bytes = Number(du.stdout.split(/\s/)[0]) || 0;
      await writeFile(join(partial, META), JSON.stringify({ key, bytes, created: new Date().toISOString() } satisfies Meta));
      await writeFile(join(partial, 'used'), new Date().toISOString());
      await rename(partial, entry).catch(async (e: NodeJS.ErrnoException) => {
        // Another build stored the same tree first: theirs is as good.
        if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
      });
      log(`tree cache: kept the bootstrapped tree as ${key.slice(0, 12)} (${(bytes / 1e6).toFixed(0)} MB)`);
      await this.evict(log);
    } catch (e) {
      log(`tree cache: could not keep the tree: ${(e as Error).message}`);
    } finally {
      await removeTree(partial).catch(() => undefined);
    }
  }

  /** Counts `bytes` more against an entry (something kept with its tree) and marks it used. */
  async grow(key: string, bytes: number): Promise<void> {
    const file = join(this.entry(key), META);
    const meta = JSON.parse(await readFile(file, 'utf8')) as Meta;
    await writeFile(file, JSON.stringify({ ...meta, bytes: meta.bytes + bytes }));
    await this.touch(key);
  }

  /** Marks an entry used now (least recently used entries go first). */
  async touch(key: string): Promise<void> {
    await writeFile(join(this.entry(key), 'used'), new Date().toISOString());
  }

  /** Removes the least recently used entries until the cache fits its bound; entries in use stay. */
  async evict(log: (line: string) => void = () => undefined): Promise<string[]> {
    const names = await readdir(this.options.dir).catch(() => [] as string[]);
    const entries: { key: string; bytes: number; used: number }[] = [];
    for (const name of names) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const meta = (await readFile(join(this.options.dir, name, META), 'utf8').then(JSON.parse).catch(() => null)) as Meta | null;
      if (!meta) continue;
      const used = (await stat(join(this.options.dir, name, 'used')).catch(() => null))?.mtimeMs ?? 0;
      entries.push({ key: name, bytes: meta.bytes, used });
    }
    let total = entries.reduce((n, e) => n + e.bytes, 0);
    const evicted: string[] = [];
    for (const e of entries.sort((a, b) => a.used - b.used)) {
      if (total <= this.options.maxBytes) break;
      if (this.inUse.has(e.key)) continue;
      await removeTree(this.entry(e.key));
      total -= e.bytes;
      evicted.push(e.key);
      log(`tree cache: evicted ${e.key.slice(0, 12)} (${(e.bytes / 1e6).toFixed(0)} MB, least recently used)`);
    }
    return evicted;
  }
}
