import { rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StepError } from '../os/plugin.js';
import { ovfDescriptor, type OvfSpec } from './ovf.js';
import { convertDisk, diskInfo, partialPath, type QemuFormat } from './qemu-img.js';
import { convertDir, type Produce } from './steps.js';
import type { CloudStepContext, ConversionReport } from './types.js';

/** The ways a target body is produced from the adapted overlay. */

const elapsed = (started: number) => Math.round((Date.now() - started) / 100) / 10;

/** A plain disk conversion: qemu-img straight to the output. */
export function diskProduce(d: { format: QemuFormat; options?: Record<string, string>; diskFormat: string; label: string }): Produce {
  return async (ctx, source) => {
    const started = Date.now();
    const done = await convertDisk(ctx, { from: source, to: ctx.outputPath, format: d.format, ...(d.options ? { options: d.options } : {}), progressRange: [0, 99], activity: `Converting to ${d.label} with qemu-img` });
    const info = await diskInfo(ctx, ctx.outputPath, d.format);
    return { format: d.diskFormat, disk_format: d.diskFormat, container_format: 'bare', commands: [done.command], virtual_size: info.virtualSize, qemu_format: d.format, ...(d.options ? { qemu_options: d.options } : {}), seconds: elapsed(started) };
  };
}

/** Whether a program is on PATH (pigz, to gzip on every core). */
async function have(ctx: Pick<CloudStepContext, 'run'>, program: string): Promise<boolean> {
  return (await ctx.run('sh', ['-c', 'command -v "$1" >/dev/null', 'sh', program])).code === 0;
}

/**
 * Runs GNU tar (spawned: packing never runs on the event loop) into
 * `<outputPath>.partial`, with progress from its checkpoints, then renames.
 */
async function tarInto(ctx: CloudStepContext, args: string[], expectBytes: number, range: [number, number], activity: string): Promise<string> {
  const partial = partialPath(ctx.outputPath);
  await rm(partial, { force: true });
  const full = ['--checkpoint=1024', '--checkpoint-action=echo=IFCP %{r}T', '-cf', partial, ...args];
  try {
    const r = await ctx.run('tar', full, {
      onLine: (line) => {
        const m = /IFCP (\d+)/.exec(line);
        if (m && expectBytes > 0) ctx.progress(range[0] + ((range[1] - range[0]) * Math.min(1, Number(m[1]) / expectBytes)), activity);
      },
    });
    if (r.code !== 0) throw new StepError('pack_failed', `tar exited with ${r.code}: ${r.stderr.trim().split('\n').filter((l) => !l.includes('IFCP')).slice(-3).join(' / ')}`);
    await rename(partial, ctx.outputPath);
  } catch (e) {
    await rm(partial, { force: true });
    throw e;
  }
  return ['tar', ...full.filter((a) => !a.startsWith('--checkpoint'))].join(' ').replace(partial, ctx.outputPath);
}

/**
 * GCE: a gzip-compressed GNU tar holding exactly one file, `disk.raw`, the
 * raw disk stored sparse (Google's documented `tar --format=oldgnu -Sczf`).
 */
export const gceProduce: Produce = async (ctx, source) => {
  const started = Date.now();
  const dir = convertDir(ctx);
  const raw = join(dir, 'disk.raw');
  const conv = await convertDisk(ctx, { from: source, to: raw, format: 'raw', progressRange: [0, 40], activity: 'Converting to a raw disk.raw with qemu-img' });
  const allocated = (await stat(raw)).blocks * 512;
  const gzip = (await have(ctx, 'pigz')) ? 'pigz' : 'gzip';
  const tarCommand = await tarInto(ctx, ['--format=oldgnu', '--sparse', `--use-compress-program=${gzip}`, '--numeric-owner', '--owner=0', '--group=0', '-C', dir, 'disk.raw'], allocated, [40, 99], `Packing disk.raw into a sparse tar.gz (${gzip})`);
  const virtualSize = (await stat(raw)).size;
  await rm(raw, { force: true });
  return { format: 'tar.gz', disk_format: 'raw', container_format: 'bare', commands: [conv.command.replace(raw, 'disk.raw'), tarCommand.replace(`-C ${dir}`, '-C .')], virtual_size: virtualSize, archive_members: ['disk.raw'], tar_format: 'oldgnu (GNU, sparse)', compressor: gzip, seconds: elapsed(started) };
};

export interface OvaOptions {
  /** The OVF's virtual hardware: the original's `ovf_cpu_count`, `ovf_memory_mb`, `ovf_name`. */
  cpus: number;
  memoryMiB: number;
  name: string;
}

/**
 * OVA: an OVF descriptor, a manifest (SHA256 of each file) and a
 * streamOptimized VMDK in a ustar archive, the descriptor first as the OVF
 * specification requires. The descriptor's file size and references are
 * those of the VMDK as written.
 */
export function ovaProduce(options: (ctx: CloudStepContext) => OvaOptions): Produce {
  return async (ctx, source) => {
    const started = Date.now();
    const o = options(ctx);
    const dir = convertDir(ctx);
    const stem = o.name.replace(/[^A-Za-z0-9._-]/g, '_') || 'image';
    const vmdkName = `${stem}-disk1.vmdk`;
    const vmdk = join(dir, vmdkName);
    const conv = await convertDisk(ctx, { from: source, to: vmdk, format: 'vmdk', options: { subformat: 'streamOptimized' }, progressRange: [0, 80], activity: 'Converting to a streamOptimized VMDK with qemu-img' });
    const info = await diskInfo(ctx, vmdk, 'vmdk');
    const vmdkSize = (await stat(vmdk)).size;
    const spec: OvfSpec = { name: o.name, cpus: o.cpus, memoryMiB: o.memoryMiB, disk: { file: vmdkName, fileSize: vmdkSize, capacity: info.virtualSize }, os: ctx.template.os };
    const ovfName = `${stem}.ovf`;
    const mfName = `${stem}.mf`;
    const ovf = ovfDescriptor(spec);
    await writeFile(join(dir, ovfName), ovf);
    ctx.progress(82, 'Checksumming the OVA members (sha256, in the worker pool)');
    const vmdkSha = await ctx.pool.sha256(vmdk, { signal: ctx.signal });
    const ovfSha = await ctx.pool.sha256(join(dir, ovfName), { signal: ctx.signal });
    await writeFile(join(dir, mfName), `SHA256(${ovfName})= ${ovfSha}\nSHA256(${vmdkName})= ${vmdkSha}\n`);
    const tarCommand = await tarInto(ctx, ['--format=ustar', '--numeric-owner', '--owner=0', '--group=0', '--mode=0644', '-C', dir, ovfName, mfName, vmdkName], vmdkSize, [85, 99], 'Packing the OVA (tar)');
    return {
      format: 'ova',
      disk_format: 'vmdk',
      container_format: 'ova',
      commands: [conv.command.replace(vmdk, vmdkName), tarCommand.replace(`-C ${dir}`, '-C .')],
      virtual_size: info.virtualSize,
      archive_members: [ovfName, mfName, vmdkName],
      vmdk: { file: vmdkName, size: vmdkSize, sha256: vmdkSha, subformat: 'streamOptimized' },
      ovf: { cpus: o.cpus, memory_mb: o.memoryMiB, name: o.name },
      seconds: elapsed(started),
    } satisfies ConversionReport;
  };
}
