import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BootCheckpoints, bootKey, CHECKPOINT_FILES } from '../../src/os/debian/boot-checkpoint.js';
import { TreeCache, treeKey } from '../../src/os/debian/tree-cache.js';
import { localRunner } from '../../src/os/media/tools.js';
import { createDebianPlugin } from '../../src/os/debian/plugin.js';
import type { GuestSpec, RunningGuest, StepContext } from '../../src/os/plugin.js';
import type { StepError } from '../../src/model/errors.js';
import { parseTdlOrThrow } from '../../src/tdl/index.js';

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

/**
 * The customize step with a checkpoint to resume, its guest runner faked
 * (orchestration only; the real resume is in test/e2e/boot-checkpoint.test.ts):
 * a resumed guest that never starts its job is given up after the pickup
 * window and the build boots afresh, instead of waiting for the stall
 * watchdog; one that starts it is left alone.
 */
describe('a resumed guest that does not start its job', () => {
  type Call = { restore?: unknown; channelLog: string; abandoned: Error | null };

  async function customize(resumed: (call: Call, guest: RunningGuest) => Promise<void>) {
    const { root, work } = setup();
    writeFileSync(join(work, 'boot.json'), JSON.stringify({ treeKey: TREE, key: KEY, resume: meta('qemu 7.2 tcg machine pc') }));
    const log: string[] = [];
    const calls: Call[] = [];
    const ctx = {
      template: parseTdlOrThrow('<template><name>d</name><os><name>Debian</name><version>12</version><arch>x86_64</arch><install type="url"><url>http://deb.debian.org/debian</url></install><rootpw>pw</rootpw></os><commands><command name="c">true</command></commands></template>'),
      parameters: {},
      workdir: work,
      diskPath: join(root, 'disk.qcow2'),
      signal: new AbortController().signal,
      log: (line: string) => log.push(line),
      progress: () => undefined,
      run: async () => ({ code: 0, stdout: '', stderr: '' }),
      runGuest: (spec: GuestSpec) => {
        const call: Call = { restore: spec.restore, channelLog: spec.channelLog!, abandoned: null };
        calls.push(call);
        if (!spec.restore) return Promise.reject(new Error('booted afresh'));
        return new Promise<void>((resolve, reject) => {
          const guest: RunningGuest = {
            checkpoint: null,
            resume: async () => undefined,
            abandon: (reason) => {
              call.abandoned = reason;
              reject(reason);
            },
          };
          spec.onStarted!(guest);
          resumed(call, guest).then(resolve, reject);
        });
      },
      report: () => undefined,
    } as unknown as StepContext;
    const started = Date.now();
    const error = await createDebianPlugin({ jobPickupSeconds: 2 }).customize.run(ctx).then(() => null, (e: Error) => e);
    return { calls, log, error, seconds: (Date.now() - started) / 1000 };
  }

  it('is given up after the pickup window with checkpoint_unusable, and the build boots afresh', async () => {
    const { calls, log, error, seconds } = await customize(() => new Promise(() => undefined));
    expect(calls.map((c) => Boolean(c.restore))).toEqual([true, false]);
    expect((calls[0]!.abandoned as StepError).code).toBe('checkpoint_unusable');
    expect(log).toContain('boot checkpoint: not resumed (the resumed guest did not start its job within 2 s); booting instead');
    expect(error!.message).toBe('booted afresh');
    expect(seconds).toBeGreaterThanOrEqual(2);
  });

  it('is left alone once it has started its job', async () => {
    const { calls, error } = await customize(async (call) => {
      writeFileSync(call.channelLog, 'IFMARK job-start\n');
      await new Promise((r) => setTimeout(r, 4000));
    });
    expect(calls.map((c) => Boolean(c.restore))).toEqual([true]);
    expect(calls[0]!.abandoned).toBeNull();
    // The fake guest powered off without finishing: the channel says so.
    expect((error as StepError).code).toBe('customize_incomplete');
  });
});
