import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BootCheckpoints, bootKey, CHECKPOINT_FILES } from '../../src/os/debian/boot-checkpoint.js';
import { TreeCache, treeKey } from '../../src/os/debian/tree-cache.js';
import { localRunner } from '../../src/os/media/tools.js';

/**
 * The bookkeeping of boot checkpoints with plain files (the guests behind
 * them are tested in test/hypervisor/checkpoint.test.ts and, with real
 * Debian builds, in test/e2e/debian.test.ts).
 */

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const run = localRunner();
const TREE = treeKey({ args: ['a'], sources: [], releaseDates: ['x'] });
const parts = { treeKey: TREE, hostWrites: { files: [['/etc/hostname', 'h']] }, diskSizeBytes: 4n * 2n ** 30n, guest: { memoryMiB: 1024 } };
const KEY = bootKey(parts);
const meta = (identity: string) => ({ identity, bootSeconds: 14.2, created: '2026-12-02T14:00:00.000Z' });

/** A cache holding the tree TREE, and a work directory holding a checkpoint's three files. */
function setup(maxBytes = 1e9) {
  const root = mkdtempSync(join(tmpdir(), 'if-boot-checkpoint-test-'));
  dirs.push(root);
  const trees = new TreeCache({ dir: join(root, 'cache'), maxBytes });
  const work = join(root, 'work');
  mkdirSync(work);
  for (const [what, name] of Object.entries(CHECKPOINT_FILES)) writeFileSync(join(work, name), `${what} `.repeat(20_000));
  return { root, trees, checkpoints: new BootCheckpoints(trees), work };
}

async function withTree(trees: TreeCache, root: string): Promise<void> {
  mkdirSync(join(root, 'tree/etc'), { recursive: true });
  writeFileSync(join(root, 'tree/etc/hostname'), 'x');
  await trees.store(TREE, join(root, 'tree'), run, () => undefined);
}

describe('the boot checkpoint key', () => {
  it('changes with the tree, the host writes, the disk size and the guest, and only with them', () => {
    expect(KEY).toMatch(/^[0-9a-f]{64}$/);
    expect(bootKey({ ...parts })).toBe(KEY);
    expect(bootKey({ ...parts, treeKey: treeKey({ args: ['b'], sources: [], releaseDates: ['x'] }) })).not.toBe(KEY);
    expect(bootKey({ ...parts, hostWrites: { files: [['/etc/hostname', 'other']] } })).not.toBe(KEY);
    expect(bootKey({ ...parts, diskSizeBytes: 2n * 2n ** 30n })).not.toBe(KEY);
    expect(bootKey({ ...parts, guest: { memoryMiB: 2048 } })).not.toBe(KEY);
  });
});

describe('boot checkpoints', () => {
  it('keeps the files with their tree (hard links, counted in its size) and links them into a later build', async () => {
    const { root, trees, checkpoints, work } = setup();
    await withTree(trees, root);
    const treeBytes = JSON.parse(readFileSync(join(trees.entry(TREE), 'meta.json'), 'utf8')).bytes as number;
    const logs: string[] = [];
    await checkpoints.keep(TREE, KEY, work, meta('qemu 7.2 tcg'), run, (l) => logs.push(l));
    expect(logs.join('\n')).toMatch(new RegExp(`boot checkpoint: kept the booted guest as ${KEY.slice(0, 12)} with tree ${TREE.slice(0, 12)} \\(\\d+ MB\\)`));
    const dir = join(trees.entry(TREE), 'boot', KEY);
    expect(statSync(join(dir, 'disk.raw')).ino).toBe(statSync(join(work, 'disk.raw')).ino);
    expect(JSON.parse(readFileSync(join(trees.entry(TREE), 'meta.json'), 'utf8')).bytes).toBeGreaterThan(treeBytes);
    expect(await checkpoints.find(TREE, KEY)).toEqual(meta('qemu 7.2 tcg'));

    const later = join(root, 'later');
    mkdirSync(later);
    expect(await checkpoints.linkInto(TREE, KEY, later, run)).toEqual(meta('qemu 7.2 tcg'));
    expect(readdirSync(later).sort()).toEqual(Object.values(CHECKPOINT_FILES).sort());
    expect(readFileSync(join(later, 'boot.state'), 'utf8')).toBe('state '.repeat(20_000));
    rmSync(later, { recursive: true });
    expect(readdirSync(dir).sort()).toEqual([...Object.values(CHECKPOINT_FILES), 'meta.json'].sort());
  });

  it('keeps nothing for a tree the cache does not hold, and misses a key it does not hold', async () => {
    const { root, checkpoints, work, trees } = setup();
    await checkpoints.keep(TREE, KEY, work, meta('qemu 7.2 tcg'), run, () => undefined);
    expect(await checkpoints.find(TREE, KEY)).toBeNull();
    await withTree(trees, root);
    const into = join(root, 'into');
    mkdirSync(into);
    expect(await checkpoints.linkInto(TREE, KEY, into, run)).toBeNull();
    expect(readdirSync(into)).toEqual([]);
  });

  it('replaces a checkpoint of another identity, keeps one of the same, and clears half-kept ones of dead processes', async () => {
    const { root, trees, checkpoints, work } = setup();
    await withTree(trees, root);
    const entryBytes = () => JSON.parse(readFileSync(join(trees.entry(TREE), 'meta.json'), 'utf8')).bytes as number;
    const treeBytes = entryBytes();
    await checkpoints.keep(TREE, KEY, work, meta('qemu 7.2 kvm'), run, () => undefined);
    const withOne = entryBytes();
    expect(withOne).toBeGreaterThan(treeBytes);
    const stale = join(trees.entry(TREE), 'boot', `${KEY}.partial-999999999-1`);
    mkdirSync(stale);
    // A new file, as a new checkpoint makes it: the kept one is a hard link that is never written.
    rmSync(join(work, 'boot.state'));
    writeFileSync(join(work, 'boot.state'), 'newer');
    await checkpoints.keep(TREE, KEY, work, meta('qemu 7.2 tcg'), run, () => undefined);
    expect((await checkpoints.find(TREE, KEY))?.identity).toBe('qemu 7.2 tcg');
    expect(readFileSync(join(trees.entry(TREE), 'boot', KEY, 'boot.state'), 'utf8')).toBe('newer');
    expect(readdirSync(join(trees.entry(TREE), 'boot'))).toEqual([KEY]);
    // The replaced checkpoint's size is no longer counted; its state file is smaller now.
    expect(entryBytes()).toBeLessThan(withOne);
    expect(entryBytes()).toBeGreaterThan(treeBytes);
    rmSync(join(work, 'boot.state'));
    writeFileSync(join(work, 'boot.state'), 'newest');
    await checkpoints.keep(TREE, KEY, work, meta('qemu 7.2 tcg'), run, () => undefined);
    expect(readFileSync(join(trees.entry(TREE), 'boot', KEY, 'boot.state'), 'utf8')).toBe('newer');
  });

  it('goes with its tree when the cache evicts it', async () => {
    const { root, trees, checkpoints, work } = setup(200_000);
    await withTree(trees, root);
    await checkpoints.keep(TREE, KEY, work, meta('qemu 7.2 tcg'), run, () => undefined);
    expect(readdirSync(join(root, 'cache'))).toEqual([]);
    expect(await checkpoints.find(TREE, KEY)).toBeNull();
  });
});
