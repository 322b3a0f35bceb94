import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { localRunner } from '../../src/os/media/tools.js';
import { releaseFileDate, TreeCache, treeKey } from '../../src/os/debian/tree-cache.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), 'if-tree-cache-test-'));
  dirs.push(d);
  return d;
};
const run = localRunner();

/** A small root tree with the kinds of entries a real one has: owner-only files, a setuid binary, symlinks, an empty directory. */
function makeTree(at: string, marker: string): void {
  mkdirSync(join(at, 'etc'), { recursive: true });
  mkdirSync(join(at, 'usr/bin'), { recursive: true });
  mkdirSync(join(at, 'var/empty'), { recursive: true });
  writeFileSync(join(at, 'etc/shadow'), `root:*:${marker}\n`, { mode: 0o640 });
  writeFileSync(join(at, 'usr/bin/su'), 'binary', { mode: 0o4755 });
  symlinkSync('/usr/bin/su', join(at, 'usr/bin/link-to-su'));
  symlinkSync('usr/bin', join(at, 'bin'));
}

const key = (marker: string) => treeKey({ args: ['--include=systemd-sysv', marker], sources: [], releaseDates: ['Sat, 15 Nov 2026 10:00:00 UTC'] });

describe('the tree cache key', () => {
  it('changes with the bootstrap command, the source files and the Release dates, and only with them', () => {
    const parts = { args: ['--variant=minbase', '--include=linux-image-cloud-amd64'], sources: ['deb http://deb.debian.org/debian bookworm-updates main\n'], releaseDates: ['Sat, 15 Nov 2026 10:00:00 UTC', 'Sun, 16 Nov 2026 08:00:00 UTC'] };
    const k = treeKey(parts);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(treeKey({ ...parts })).toBe(k);
    expect(treeKey({ ...parts, args: [...parts.args, '--include=jq'] })).not.toBe(k);
    expect(treeKey({ ...parts, sources: [] })).not.toBe(k);
    expect(treeKey({ ...parts, releaseDates: ['Sat, 22 Nov 2026 10:00:00 UTC', parts.releaseDates[1]!] })).not.toBe(k);
  });

  it("reads the Date of a signed Release file", () => {
    const inRelease = '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian\nLabel: Debian\nSuite: stable\nCodename: bookworm\nDate: Sat, 08 Nov 2026 09:30:12 UTC\nAcquire-By-Hash: yes\n';
    expect(releaseFileDate(inRelease)).toBe('Sat, 08 Nov 2026 09:30:12 UTC');
    expect(releaseFileDate('<html>not found</html>')).toBeNull();
  });
});

describe('the tree cache', () => {
  it('keeps a tree and restores an exact copy of it: modes, setuid bits, symlinks, empty directories', async () => {
    const root = temp();
    const cache = new TreeCache({ dir: join(root, 'cache'), maxBytes: 1e9 });
    const tree = join(root, 'tree');
    makeTree(tree, 'a');
    const logs: string[] = [];
    expect(await cache.has(key('a'))).toBe(false);
    await cache.store(key('a'), tree, run, (l) => logs.push(l));
    expect(logs.join('\n')).toContain(`tree cache: kept the bootstrapped tree as ${key('a').slice(0, 12)}`);

    const into = join(root, 'restored');
    mkdirSync(into);
    expect(await cache.restore(key('a'), into, run)).toBe(true);
    expect(spawnSync('diff', ['-r', '--no-dereference', tree, into]).status).toBe(0);
    expect(lstatSync(join(into, 'usr/bin/su')).mode & 0o7777).toBe(0o4755);
    expect(lstatSync(join(into, 'etc/shadow')).mode & 0o777).toBe(0o640);
    expect(lstatSync(join(into, 'bin')).isSymbolicLink()).toBe(true);
    expect(existsSync(join(into, 'var/empty'))).toBe(true);
    // Restoring copies: changing the copy leaves the cached tree as it was.
    writeFileSync(join(into, 'etc/shadow'), 'changed');
    const again = join(root, 'again');
    mkdirSync(again);
    await cache.restore(key('a'), again, run);
    expect(readFileSync(join(again, 'etc/shadow'), 'utf8')).toBe('root:*:a\n');
    expect(readdirSync(join(root, 'cache')).filter((n) => n.includes('partial'))).toEqual([]);
  });

  it('misses a key it does not hold', async () => {
    const root = temp();
    const cache = new TreeCache({ dir: join(root, 'cache'), maxBytes: 1e9 });
    mkdirSync(join(root, 'into'));
    expect(await cache.restore(key('never'), join(root, 'into'), run)).toBe(false);
    expect(readdirSync(join(root, 'into'))).toEqual([]);
  });

  it('evicts the least recently used trees when it outgrows its bound', async () => {
    const root = temp();
    const big = new TreeCache({ dir: join(root, 'cache'), maxBytes: 1e9 });
    for (const m of ['a', 'b', 'c']) {
      const tree = join(root, `tree-${m}`);
      makeTree(tree, m);
      writeFileSync(join(tree, 'payload'), Buffer.alloc(100_000, m));
      await big.store(key(m), tree, run, () => undefined);
    }
    // b was used last, a before it, c long ago.
    const entry = (m: string) => join(root, 'cache', key(m), 'used');
    utimesSync(entry('c'), new Date(1000), new Date(1000));
    utimesSync(entry('a'), new Date(2000), new Date(2000));
    const bounded = new TreeCache({ dir: join(root, 'cache'), maxBytes: 150_000 });
    const evicted = await bounded.evict();
    expect(evicted).toEqual([key('c'), key('a')]);
    expect(await bounded.has(key('b'))).toBe(true);
  });
});
