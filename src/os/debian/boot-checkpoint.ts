import { createHash } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeTree } from '../../fs/remove-tree.js';
import type { RunResult } from '../plugin.js';
import type { TreeCache } from './tree-cache.js';

/**
 * Booted customization guests, kept with the tree they were made from.
 *
 * Under TCG the customization boot is most of a rebuild that reuses its
 * tree (≈ 15 of 26 s for examples/debian-12.tdl). Two builds whose disks
 * are identical before that boot — the same tree, the same files and
 * settings written into it on the host, the same disk size — boot the same
 * way up to the moment the guest agent waits for its job. So the first
 * such build pauses its guest there, saves its memory and devices (qemu
 * migration to a file), and keeps that state with the disk as it was
 * then: the pre-boot disk and a qcow2 overlay of what the boot wrote. A
 * later build that differs only in what the job carries (commands,
 * precommands, guest-side packages and files) resumes that guest in well
 * under a second, and its job runs as it would have after a boot.
 *
 * A checkpoint lives in its tree's cache entry (`<tree>/boot/<key>/`), is
 * counted in that entry's size and is evicted with it. Its files are never
 * written after they are kept: a build hard-links them into its work
 * directory (copies across filesystems) and boots a new overlay on top.
 * A checkpoint is restored only on the emulator build and accelerator that
 * took it (its identity); anything else boots afresh.
 */

/** Bump when the disk assembly, the guest agent or the customization guest's hardware change: older checkpoints then never match. */
const FORMAT = 2;

/** The files of a checkpoint, under these names in the cache and in a build's work directory. */
export const CHECKPOINT_FILES = { disk: 'disk.raw', booted: 'booted.qcow2', state: 'boot.state' } as const;

export interface CheckpointMeta {
  /** The hypervisor identity it was taken on (RunningGuest.checkpoint). */
  identity: string;
  /** Seconds from the guest's start to multi-user, in the boot that was saved. */
  bootSeconds: number | null;
  created: string;
}

type Run = (command: string, args: string[]) => Promise<RunResult>;

/** The key of everything that decides a guest's disk before its first boot, beyond its tree. */
export function bootKey(parts: { treeKey: string; hostWrites: unknown; diskSizeBytes: bigint; guest: unknown }): string {
  return createHash('sha256')
    .update(JSON.stringify({ format: FORMAT, ...parts, diskSizeBytes: String(parts.diskSizeBytes) }))
    .digest('hex');
}

/** Hard-links `from` to `to`, or copies it (holes kept) when they are on different filesystems. */
async function linkOrCopy(run: Run, from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    const r = await run('cp', ['--sparse=always', from, to]);
    if (r.code !== 0) throw new Error(`copying ${from} failed: ${r.stderr.trim()}`);
  }
}

/** Half-kept checkpoints of processes that died (kill -9) meanwhile. */
async function removeStalePartials(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const pid = Number(/\.partial-(\d+)-\d+$/.exec(name)?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch {
      await removeTree(join(dir, name)).catch(() => undefined);
    }
  }
}

/** The space a checkpoint's files take (allocated blocks: the disk is sparse). */
async function filesBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const name of Object.values(CHECKPOINT_FILES)) bytes += ((await stat(join(dir, name)).catch(() => null))?.blocks ?? 0) * 512;
  return bytes;
}

export class BootCheckpoints {
  constructor(private readonly trees: TreeCache) {}

  private dir(treeKey: string, key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`not a boot checkpoint key: ${key}`);
    return join(this.trees.entry(treeKey), 'boot', key);
  }

  async find(treeKey: string, key: string): Promise<CheckpointMeta | null> {
    return readFile(join(this.dir(treeKey, key), 'meta.json'), 'utf8').then(
      (t) => JSON.parse(t) as CheckpointMeta,
      () => null,
    );
  }

  /** Puts the checkpoint's files into `workdir` (CHECKPOINT_FILES names) and returns its meta; null when there is none (or it was evicted meanwhile). */
  async linkInto(treeKey: string, key: string, workdir: string, run: Run): Promise<CheckpointMeta | null> {
    const meta = await this.find(treeKey, key);
    if (!meta) return null;
    const dir = this.dir(treeKey, key);
    try {
      for (const name of Object.values(CHECKPOINT_FILES)) {
        await rm(join(workdir, name), { force: true });
        await linkOrCopy(run, join(dir, name), join(workdir, name));
      }
    } catch {
      // Evicted meanwhile: the build boots as if there had been none.
      for (const name of Object.values(CHECKPOINT_FILES)) await rm(join(workdir, name), { force: true });
      return null;
    }
    await this.trees.touch(treeKey).catch(() => undefined);
    return meta;
  }

  /**
   * Keeps the files in `workdir` (CHECKPOINT_FILES names) as the checkpoint
   * `key` of the tree `treeKey`, replacing one of another identity. They
   * must never be written again. A cache that cannot take it costs a later
   * build a boot, never this build.
   */
  async keep(treeKey: string, key: string, workdir: string, meta: CheckpointMeta, run: Run, log: (line: string) => void): Promise<void> {
    const dir = this.dir(treeKey, key);
    const partial = `${dir}.partial-${process.pid}-${Date.now()}`;
    try {
      if (!(await this.trees.has(treeKey))) return;
      const existing = await this.find(treeKey, key);
      if (existing?.identity === meta.identity) return;
      await removeStalePartials(join(this.trees.entry(treeKey), 'boot'));
      await mkdir(partial, { recursive: true, mode: 0o700 });
      for (const name of Object.values(CHECKPOINT_FILES)) await linkOrCopy(run, join(workdir, name), join(partial, name));
      await writeFile(join(partial, 'meta.json'), JSON.stringify(meta));
      const replaced = existing ? await filesBytes(dir) : 0;
      if (existing) await removeTree(dir);
      const renamed = await rename(partial, dir).then(
        () => true,
        (e: NodeJS.ErrnoException) => {
          // Another build kept the same checkpoint first: theirs is as good.
          if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
          return false;
        },
      );
      if (!renamed) return;
      const bytes = await filesBytes(dir);
      await this.trees.grow(treeKey, bytes - replaced);
      log(`boot checkpoint: kept the booted guest as ${key.slice(0, 12)} with tree ${treeKey.slice(0, 12)} (${(bytes / 1e6).toFixed(0)} MB)`);
      await this.trees.evict(log);
    } catch (e) {
      log(`boot checkpoint: could not keep it: ${(e as Error).message}`);
    } finally {
      await removeTree(partial).catch(() => undefined);
    }
  }
}
