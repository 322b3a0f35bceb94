import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { MountedTreeError, mountsUnder, removeTree, removeTreeSync } from '../../src/fs/remove-tree.js';
import { describeWithTools, tool } from '../tools.js';

let dir: string;
const mounted: string[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imagefactory-test-remove-tree-'));
});
afterEach(async () => {
  for (const m of mounted.splice(0)) spawnSync('umount', ['-l', m]);
  await rm(dir, { recursive: true, force: true });
});

function mountTmpfs(at: string): void {
  const r = spawnSync('mount', ['-t', 'tmpfs', 'imagefactory-test', at], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount failed: ${r.stderr}`);
  mounted.push(at);
}

/** Mounting needs root (the product runs as root; CI does too). */
const ROOT = { name: 'root (to mount a tmpfs)', command: 'sh', args: ['-c', 'test "$(id -u)" = 0'] };

describeWithTools([ROOT, tool('mount', ['--version'])], 'deleting a tree that has something mounted inside it', () => {
  it('refuses with mounts_left, naming the mount, and deletes nothing on either side of it', async () => {
    const tree = join(dir, 'tree with space');
    await mkdir(join(tree, 'proc'), { recursive: true });
    await writeFile(join(tree, 'keep.txt'), 'tree file');
    mountTmpfs(join(tree, 'proc'));
    await writeFile(join(tree, 'proc', 'host-file'), 'stands for the host /proc');

    expect(mountsUnder(tree)).toEqual([join(tree, 'proc')]);
    const refused = await removeTree(tree, { waitMs: 300 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(MountedTreeError);
    expect(refused).toMatchObject({ code: 'mounts_left', mounts: [join(tree, 'proc')] });
    expect(() => removeTreeSync(tree)).toThrow(MountedTreeError);
    expect(existsSync(join(tree, 'proc', 'host-file'))).toBe(true);
    expect(existsSync(join(tree, 'keep.txt'))).toBe(true);
  });

  it('waits for a mount that goes away, then deletes the whole tree', async () => {
    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'dev/pts'), { recursive: true });
    mountTmpfs(join(tree, 'dev/pts'));
    setTimeout(() => spawnSync('umount', [join(tree, 'dev/pts')]), 200);
    await removeTree(tree, { waitMs: 5000 });
    expect(existsSync(tree)).toBe(false);
  });
});

it('deletes a tree without mounts, and does not follow a symlink out of it', async () => {
  const outside = join(dir, 'outside');
  await mkdir(outside);
  await writeFile(join(outside, 'precious'), 'x');
  const tree = join(dir, 'tree');
  await mkdir(join(tree, 'a/b'), { recursive: true });
  await writeFile(join(tree, 'a/b/f'), 'f');
  const { symlink } = await import('node:fs/promises');
  await symlink(outside, join(tree, 'a/escape'));
  await removeTree(tree);
  expect(existsSync(tree)).toBe(false);
  expect(existsSync(join(outside, 'precious'))).toBe(true);
});

it('treats a missing path as already removed', async () => {
  await removeTree(join(dir, 'never-made'));
  removeTreeSync(join(dir, 'never-made'));
});
