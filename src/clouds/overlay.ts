import { resolve } from 'node:path';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { StepError } from '../os/plugin.js';
import { diskInfo } from './qemu-img.js';
import type { CloudStepContext } from './types.js';

/** The target's working disk: a qcow2 overlay whose backing file is the frozen base. */
export const overlayPath = (ctx: Pick<CloudStepContext, 'workdir'>) => join(ctx.workdir, 'overlay.qcow2');

const MiB = 1024 * 1024;

/**
 * Creates the overlay afresh (an earlier attempt's writes are dropped). Its
 * virtual size is the base's, rounded up to `alignBytes` (a qcow2 reads
 * zeros past its backing file's end). The base is named by absolute path and
 * format in the overlay's header; qemu only ever opens it read-only.
 */
export async function createOverlay(ctx: Pick<CloudStepContext, 'run' | 'workdir' | 'base'>, alignBytes = MiB): Promise<{ path: string; virtualSize: number; baseVirtualSize: number }> {
  const path = overlayPath(ctx);
  await rm(path, { force: true });
  const base = await diskInfo(ctx, ctx.base.path, ctx.base.format);
  const virtualSize = Math.ceil(base.virtualSize / alignBytes) * alignBytes;
  const r = await ctx.run('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=65536', '-F', ctx.base.format, '-b', resolve(ctx.base.path), path, String(virtualSize)]);
  if (r.code !== 0) throw new StepError('overlay_failed', `qemu-img create of the overlay exited with ${r.code}: ${r.stderr.trim()}`);
  return { path, virtualSize, baseVirtualSize: base.virtualSize };
}
