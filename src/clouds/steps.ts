import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StepError } from '../os/plugin.js';
import { needsBoot, planAdaptation, type AdaptationSpec } from './adaptation.js';
import { injectAgent, removeBootFiles, runAdaptationBoot, writeGuestFiles } from './guest-adapt.js';
import { openGuestFs } from './guest-fs.js';
import { openImageView, removeStaleView, withImageView } from './image-view.js';
import { createOverlay, overlayPath } from './overlay.js';
import { partialPath } from './qemu-img.js';
import type { CloudStep, CloudStepContext, ConversionReport } from './types.js';

/**
 * The two steps every cloud plugin is made of; a plugin supplies what its
 * target needs (an `AdaptationSpec`) and how to produce its format.
 */

const adaptedMarker = (ctx: Pick<CloudStepContext, 'workdir'>) => join(ctx.workdir, 'adapted.json');
const viewPath = (ctx: Pick<CloudStepContext, 'workdir'>) => join(ctx.workdir, 'overlay.view');
/** Scratch space of a conversion (intermediate disks, archives being assembled). */
export const convertDir = (ctx: Pick<CloudStepContext, 'workdir'>) => join(ctx.workdir, 'convert');
/** Where a conversion that reads the overlay's files (docker) opens its view. */
export const convertViewPath = (ctx: Pick<CloudStepContext, 'workdir'>) => join(convertDir(ctx), 'overlay.view');

async function removeConvertDir(ctx: Pick<CloudStepContext, 'workdir'>): Promise<void> {
  await removeStaleView(convertViewPath(ctx));
  await rm(convertDir(ctx), { recursive: true, force: true });
}

const exists = (p: string) => stat(p).then(() => true, () => false);

export interface AdaptOptions {
  /** What the target needs in the image; `NO_ADAPTATION` for plain conversions. */
  spec(ctx: CloudStepContext): AdaptationSpec;
  /** The overlay's virtual size is rounded up to this (1 MiB by default; Azure requires it). */
  alignBytes?: number;
}

export function createAdaptStep(opts: AdaptOptions): CloudStep {
  return {
    async run(ctx) {
      await mkdir(ctx.workdir, { recursive: true, mode: 0o700 });
      if ((await exists(adaptedMarker(ctx))) && (await exists(overlayPath(ctx)))) return; // adapted by an earlier run
      const spec = opts.spec(ctx);
      const started = Date.now();
      ctx.progress(0, 'Creating a copy-on-write overlay of the base image');
      const overlay = await createOverlay(ctx, opts.alignBytes);
      const wanted = spec.packages.length > 0 || spec.bootModules.length > 0 || spec.serialConsole || spec.files.length > 0;
      let facts: Record<string, unknown> = { booted: false, virtual_size: overlay.virtualSize, base_virtual_size: overlay.baseVirtualSize };
      if (wanted) {
        ctx.progress(5, 'Reading the image: packages, initramfs, kernel command line');
        const view = await openImageView(ctx, { image: overlay.path, format: 'qcow2', path: viewPath(ctx), writable: true });
        let plan;
        try {
          const fs = await openGuestFs(ctx, view.path);
          plan = await planAdaptation(ctx, fs, spec);
          if (needsBoot(plan)) await injectAgent(ctx, fs);
          else if (plan.writeFiles.length) await writeGuestFiles(ctx, fs, plan.writeFiles);
        } finally {
          await view.close();
        }
        facts = { ...facts, wanted: { packages: spec.packages, boot_modules: spec.bootModules, serial_console: spec.serialConsole, files: spec.files.map((f) => f.path) }, modules_before: plan.modules, written_files: plan.writeFiles.map((f) => f.path) };
        if (needsBoot(plan)) {
          const boot = await runAdaptationBoot(ctx, overlay.path, plan, ctx.progress);
          ctx.progress(90, 'Checking the adapted image');
          const after = await withImageView(ctx, { image: overlay.path, format: 'qcow2', path: viewPath(ctx), writable: false }, async (v) => planAdaptation(ctx, await openGuestFs(ctx, v.path), spec));
          if (needsBoot(after) || after.writeFiles.length) {
            throw new StepError('adaptation_unverified', `after the adaptation boot the image still lacks: ${[...after.missingPackages, ...after.missingModules, ...(after.addSerialConsole ? ['a serial console'] : []), ...after.writeFiles.map((f) => f.path)].join(', ')}`, { plan: after });
          }
          facts = { ...facts, booted: true, installed_packages: plan.missingPackages, added_boot_modules: plan.missingModules, added_serial_console: plan.addSerialConsole, boot_seconds: boot.bootSeconds, adapt_boot_seconds: boot.seconds, modules: after.modules, kernel_cmdline: after.kernelCmdline };
          ctx.report({ icicle: boot.icicle });
        } else facts = { ...facts, modules: plan.modules, kernel_cmdline: plan.kernelCmdline, reason: plan.writeFiles.length ? 'the base has the packages and drivers; configuration files were written without a boot' : 'the base already has everything the target needs' };
      } else facts = { ...facts, reason: 'the target needs nothing in the image' };
      facts.seconds = Math.round((Date.now() - started) / 100) / 10;
      ctx.report({ properties: { adaptation: facts } });
      await writeFile(adaptedMarker(ctx), JSON.stringify(facts));
      ctx.progress(100, facts.booted ? 'Adapted in one boot' : 'Nothing to change in the image');
    },
    async undo(ctx) {
      await removeStaleView(viewPath(ctx));
      await removeBootFiles(ctx);
      await rm(adaptedMarker(ctx), { force: true });
      await rm(overlayPath(ctx), { force: true });
    },
  };
}

/** Produces the target body at `ctx.outputPath` (atomically) from the adapted overlay; returns what it did. */
export type Produce = (ctx: CloudStepContext, source: { path: string; format: 'qcow2' }) => Promise<ConversionReport>;

export function createConvertStep(produce: Produce): CloudStep {
  return {
    async run(ctx) {
      if (await exists(ctx.outputPath)) return; // renamed into place only when complete: done by an earlier run
      const source = overlayPath(ctx);
      if (!(await exists(source))) throw new StepError('overlay_missing', 'the adapt step left no overlay to convert');
      await removeConvertDir(ctx);
      await mkdir(convertDir(ctx), { recursive: true });
      try {
        const report = await produce(ctx, { path: source, format: 'qcow2' });
        ctx.report({ properties: { conversion: report, format: report.format, disk_format: report.disk_format, container_format: report.container_format, ...(report.virtual_size ? { virtual_size: report.virtual_size } : {}) } });
      } catch (e) {
        await rm(partialPath(ctx.outputPath), { force: true });
        throw e;
      } finally {
        await removeConvertDir(ctx);
      }
      ctx.progress(100, 'Converted');
    },
    async undo(ctx) {
      await rm(partialPath(ctx.outputPath), { force: true });
      await removeConvertDir(ctx);
      await rm(ctx.outputPath, { force: true });
    },
  };
}

/** The adapted-overlay facts of an earlier run (for a restored build's report). */
export async function adaptedFacts(ctx: Pick<CloudStepContext, 'workdir'>): Promise<Record<string, unknown> | null> {
  return JSON.parse(await readFile(adaptedMarker(ctx), 'utf8').catch(() => 'null')) as Record<string, unknown> | null;
}
