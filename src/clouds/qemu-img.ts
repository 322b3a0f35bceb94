import { rename, rm } from 'node:fs/promises';
import { StepError } from '../os/plugin.js';
import type { CloudStepContext } from './types.js';

/** Disk formats as qemu-img names them (`vpc` is VHD). */
export type QemuFormat = 'raw' | 'qcow2' | 'vmdk' | 'vpc' | 'vhdx';

/**
 * Options chosen by measurement (docs/clouds.md, "Conversion options"): `-W`
 * (out-of-order writes) was the fastest and steadiest of the sets tried for
 * raw, qcow2 and VHD output; the default writeback cache with qemu-img's own
 * flush at close beat O_DIRECT (`-t none`, `-T none`) here. Compressed and
 * stream-optimized outputs must be written in order, so they do without `-W`.
 */
export function convertFlags(format: QemuFormat, options: Record<string, string>): string[] {
  const streamed = format === 'vmdk' && options.subformat === 'streamOptimized';
  return streamed || options.compress === 'on' ? [] : ['-W'];
}

export interface DiskConversion {
  from: { path: string; format: 'qcow2' | 'raw' };
  /** Where the converted disk must end up; written as `<to>.partial`, then renamed. */
  to: string;
  format: QemuFormat;
  /** qemu-img `-o` options, e.g. `{ subformat: 'fixed', force_size: 'on' }`. */
  options?: Record<string, string>;
  /** The part of the step's 0–100 this conversion covers: qemu-img's own percent is mapped into it. */
  progressRange?: [number, number];
  activity: string;
}

export interface ConversionDone {
  /** The command line as run (paths as given). */
  command: string;
  seconds: number;
}

/** `<to>.partial`: beside the target so the final rename is atomic (same filesystem). */
export const partialPath = (to: string) => `${to}.partial`;

/** The last `(NN.NN/100%)` in a chunk of `qemu-img convert -p` output. */
export function parseQemuImgProgress(text: string): number | null {
  let last: number | null = null;
  for (const m of text.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)) last = Number(m[1]);
  return last;
}

/**
 * `qemu-img convert -p` into a temporary file, renamed into place only once
 * complete. qemu-img writes sparse output (zero clusters are skipped) and
 * reads only the allocated parts of the source chain. A failure or an abort
 * removes the temporary file, so no partial disk is ever seen at `to`.
 */
export async function convertDisk(ctx: Pick<CloudStepContext, 'run' | 'progress' | 'signal'>, c: DiskConversion): Promise<ConversionDone> {
  const partial = partialPath(c.to);
  const options = c.options ?? {};
  const o = Object.entries(options).map(([k, v]) => `${k}=${v}`).join(',');
  const args = ['convert', '-p', ...convertFlags(c.format, options), '-f', c.from.format, '-O', c.format, ...(o ? ['-o', o] : []), c.from.path, partial];
  const [lo, hi] = c.progressRange ?? [0, 100];
  let shown = -1;
  const started = Date.now();
  await rm(partial, { force: true });
  try {
    ctx.progress(lo, c.activity);
    const r = await ctx.run('qemu-img', args, {
      onLine: (line) => {
        const p = parseQemuImgProgress(line);
        if (p === null) return;
        const mapped = Math.floor(lo + ((hi - lo) * p) / 100);
        if (mapped > shown) {
          shown = mapped;
          ctx.progress(mapped, c.activity);
        }
      },
    });
    if (r.code !== 0) throw new StepError('convert_failed', `qemu-img convert to ${c.format} exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`, { command: ['qemu-img', ...args].join(' ') });
    if (ctx.signal.aborted) throw new StepError('cancelled', 'the conversion was cancelled');
    await rename(partial, c.to);
  } catch (e) {
    await rm(partial, { force: true });
    throw e;
  }
  ctx.progress(hi, c.activity);
  return { command: ['qemu-img', ...args.filter((a) => a !== '-p')].join(' ').replace(partial, c.to), seconds: (Date.now() - started) / 1000 };
}

export interface DiskInfo {
  format: string;
  virtualSize: number;
  actualSize: number;
  backingFile: string | null;
  formatSpecific: Record<string, unknown> | null;
}

/** `qemu-img info --output=json` of one file (not its backing chain). */
export async function diskInfo(ctx: Pick<CloudStepContext, 'run'>, path: string, format?: string): Promise<DiskInfo> {
  const r = await ctx.run('qemu-img', ['info', '--output=json', ...(format ? ['-f', format] : []), path]);
  if (r.code !== 0) throw new StepError('disk_unreadable', `qemu-img info ${path} exited with ${r.code}: ${r.stderr.trim()}`);
  const j = JSON.parse(r.stdout) as Record<string, unknown>;
  return {
    format: String(j.format),
    virtualSize: Number(j['virtual-size']),
    actualSize: Number(j['actual-size'] ?? 0),
    backingFile: typeof j['backing-filename'] === 'string' ? (j['backing-filename'] as string) : null,
    formatSpecific: (j['format-specific'] as Record<string, unknown> | undefined) ?? null,
  };
}
