import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { StepError } from '../os/plugin.js';
import type { CloudStepContext } from './types.js';

/**
 * A disk image seen as a plain raw file, without NBD, loop devices or
 * partition mounts (this host has none of them usable): qemu-storage-daemon
 * exports the image (qcow2 chain or raw) over FUSE onto a regular file, and
 * e2fsprogs' debugfs reads or writes the ext4 filesystem inside it at the
 * partition's offset. Writes through a writable view of an overlay land in
 * the overlay only; its backing base is opened read-only by qemu.
 */
export interface ImageView {
  /** The regular file that shows the image's raw bytes while the view is open. */
  path: string;
  close(): Promise<void>;
}

type Ctx = Pick<CloudStepContext, 'run' | 'signal' | 'log'>;

/** Lines of /proc/mounts naming `path` as a mount point. */
async function mountedAt(path: string): Promise<boolean> {
  const mounts = await readFile('/proc/mounts', 'utf8').catch(() => '');
  return mounts.split('\n').some((l) => l.split(' ')[1]?.replace(/\\040/g, ' ') === path);
}

/**
 * Removes a view left by a crashed or killed run: a FUSE mount whose daemon
 * is gone answers "Transport endpoint is not connected" until unmounted.
 */
export async function removeStaleView(path: string): Promise<void> {
  const pidFile = `${path}.pid`;
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (pid > 0 && (await isStorageDaemon(pid))) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone
    }
    for (let i = 0; i < 100 && (await isStorageDaemon(pid)); i++) await sleep(20);
  }
  // Not through ctx.run: undo runs after a cancel too, when the build's signal is already aborted.
  if (await mountedAt(path)) await promisify(execFile)('umount', ['-l', path]).catch(() => undefined);
  await rm(pidFile, { force: true });
  await rm(path, { force: true });
}

async function isStorageDaemon(pid: number): Promise<boolean> {
  const cmd = await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '');
  return cmd.startsWith('qemu-storage-daemon\0');
}

export async function openImageView(ctx: Ctx, opts: { image: string; format: 'qcow2' | 'raw'; path: string; writable: boolean }): Promise<ImageView> {
  await removeStaleView(opts.path);
  await writeFile(opts.path, '');
  const pidFile = `${opts.path}.pid`;
  const blockdev = {
    driver: opts.format,
    'node-name': 'disk',
    'read-only': !opts.writable,
    file: { driver: 'file', filename: opts.image, 'read-only': !opts.writable },
  };
  const exportSpec = { type: 'fuse', id: 'view', 'node-name': 'disk', mountpoint: opts.path, writable: opts.writable };
  let exited = false;
  let failure = '';
  const daemon = ctx
    .run('qemu-storage-daemon', ['--blockdev', JSON.stringify(blockdev), '--export', JSON.stringify(exportSpec), '--pidfile', pidFile])
    .then((r) => {
      failure = r.stderr.trim();
      return r.code;
    })
    .catch((e: Error) => {
      failure = e.message;
      return -1;
    })
    .finally(() => (exited = true));
  const deadline = Date.now() + 30_000;
  while (!(await mountedAt(opts.path))) {
    if (exited) {
      await rm(opts.path, { force: true });
      await rm(pidFile, { force: true });
      if (ctx.signal.aborted) throw new StepError('cancelled', 'cancelled while opening the image view');
      throw new StepError('image_view_failed', `qemu-storage-daemon could not export ${opts.image} over FUSE: ${failure || 'it exited'} (FUSE must be usable: /dev/fuse)`);
    }
    if (Date.now() > deadline) {
      await removeStaleView(opts.path);
      throw new StepError('image_view_failed', `qemu-storage-daemon did not export ${opts.image} within 30 s`);
    }
    await sleep(20);
  }
  let closed: Promise<void> | null = null;
  return {
    path: opts.path,
    close() {
      closed ??= (async () => {
        const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
        // SIGTERM: qemu-storage-daemon flushes the image and removes its FUSE mount before exiting.
        if (pid > 0 && (await isStorageDaemon(pid))) {
          try {
            process.kill(pid, 'SIGTERM');
          } catch {
            // gone already
          }
        }
        await daemon;
        await removeStaleView(opts.path);
      })();
      return closed;
    },
  };
}

/** Runs `fn` with a view open, closing it on every path. */
export async function withImageView<T>(ctx: Ctx, opts: Parameters<typeof openImageView>[1], fn: (view: ImageView) => Promise<T>): Promise<T> {
  const view = await openImageView(ctx, opts);
  try {
    return await fn(view);
  } finally {
    await view.close();
  }
}
