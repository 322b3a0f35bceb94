import { copyFile, mkdir, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { OsPlugin, StepContext } from '../os/plugin.js';
import { parseTdl, formatTdlError, type Template } from '../tdl/index.js';
import type { ImageRecord } from '../store/types.js';
import { StepError } from './errors.js';

/** Share of percent_complete each working state covers, so progress only moves forward. */
export const PROGRESS_RANGE: Record<string, [number, number]> = {
  validating: [0, 2],
  preparing: [2, 10],
  installing: [10, 60],
  customizing: [60, 85],
  snapshotting: [85, 100],
  adapting: [0, 50],
  converting: [50, 100],
  uploading: [0, 80],
  registering: [80, 100],
};

export function templateOf(image: ImageRecord, requireRootPassword: boolean): Template {
  const result = parseTdl(image.template ?? '', { requireRootPassword });
  if (!result.ok) {
    throw new StepError('template_invalid', result.errors.map(formatTdlError).join('\n'), { errors: result.errors });
  }
  return result.template;
}

export function pluginMissing(template: Template, available: string[]): StepError {
  const { name, version, arch } = template.os;
  return new StepError(
    'plugin_missing',
    `no OS plugin can build ${name} ${version} ${arch}` + (available.length ? ` (loaded OS plugins: ${available.join(', ')})` : ' (no OS plugin is loaded)'),
    { os: name, version, arch },
  );
}

export function cloudPluginMissing(target: string): StepError {
  return new StepError('plugin_missing', `no cloud plugin handles the target "${target}"`, { target });
}

export const OS_STEPS = { prepare: 'prepare', install: 'install', customize: 'customize' } as const satisfies Record<string, keyof OsPlugin>;

/** Runs an OS plugin's step, creating the build's private workdir first. */
export async function runOsStep(plugin: OsPlugin, step: keyof OsPlugin, ctx: StepContext): Promise<void> {
  await mkdir(ctx.workdir, { recursive: true, mode: 0o700 });
  await plugin[step].run(ctx);
}

/**
 * The snapshot step: moves the finished disk into the warehouse as the
 * image body, checksums it in the worker pool and freezes it. Repeatable:
 * a body already moved is checksummed again.
 */
export async function snapshotBody(args: {
  ctx: StepContext;
  bodyPath: string;
  hash: (file: string, onProgress: (done: number, total: number) => void) => Promise<string>;
  freeze: () => Promise<void>;
}): Promise<{ sha256: string; size: number; format: 'qcow2' | 'raw' }> {
  const { ctx, bodyPath } = args;
  const disk = await stat(ctx.diskPath).catch(() => null);
  if (disk) {
    await mkdir(join(bodyPath, '..'), { recursive: true });
    await moveFile(ctx.diskPath, bodyPath);
  } else if (!(await stat(bodyPath).catch(() => null))) {
    throw new StepError('disk_missing', `the install produced no disk at ${ctx.diskPath}`);
  }
  ctx.progress(0, 'Checksumming the image body (sha256)');
  const sha256 = await args.hash(bodyPath, (done, total) => ctx.progress(total ? (done / total) * 100 : 100, 'Checksumming the image body (sha256)'));
  await args.freeze();
  const size = (await stat(bodyPath)).size;
  return { sha256, size, format: await diskFormat(bodyPath) };
}

/** qcow2 by its magic number, raw otherwise. */
async function diskFormat(file: string): Promise<'qcow2' | 'raw'> {
  const fh = await open(file, 'r');
  try {
    const magic = Buffer.alloc(4);
    await fh.read(magic, 0, 4, 0);
    return magic.equals(Buffer.from('QFI\xfb', 'latin1')) ? 'qcow2' : 'raw';
  } finally {
    await fh.close();
  }
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await copyFile(from, to);
    await unlink(from);
  }
}

export async function removeWorkdir(workdir: string): Promise<void> {
  await rm(workdir, { recursive: true, force: true });
}
