import { spawn } from 'node:child_process';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BUILTIN_CLOUD_PLUGINS } from '../src/clouds/builtin.js';
import { createOverlay } from '../src/clouds/overlay.js';
import { convertDisk, convertFlags, type QemuFormat } from '../src/clouds/qemu-img.js';
import { WorkerPool } from '../src/pool/index.js';
import { ensureBaseImage } from './cloud-base.js';
import { localCloudContext } from './cloud-context.js';

/**
 * Targets benchmark (`npm run bench -- targets`), on the cloud tests' Debian
 * base (built once, bench/cloud-base.ts):
 *
 * 1. conversion through the factory (`convertDisk`: qemu-img spawned with
 *    progress parsing, into a temporary file, renamed) vs. the same
 *    `qemu-img convert` command run alone on the same overlay, interleaved,
 *    median of ROUNDS each: the ratio is the factory's overhead (goal ≤ 1.05×);
 * 2. each target's adapt + convert time from that base (no target content,
 *    so no target needs a boot; the adaptation boot is measured by the tests).
 */

/** Rounds per format: short conversions (≈ 0.2 s here) need many to see through the shared machine's noise. */
const ROUNDS = Number(process.env.TARGETS_BENCH_ROUNDS ?? 15);
const SLOW_ROUNDS = Number(process.env.TARGETS_BENCH_SLOW_ROUNDS ?? 5);
const DIR = process.env.TARGETS_BENCH_DIR ?? '/var/tmp/imagefactory-bench-targets';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function timeCommand(command: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - started) / 1e9) : reject(new Error(`${command} exited ${code}: ${err}`))));
  });
}

export interface ConversionRow {
  format: string;
  /** Medians. */
  alone: number;
  factory: number;
  ratio: number;
  /** Best of the rounds: less sensitive to what else the shared machine does. */
  aloneBest: number;
  factoryBest: number;
  bestRatio: number;
}

export interface TargetRow {
  target: string;
  adapt: number;
  convert: number;
  size: number;
  format: string;
}

export async function targetsBench(): Promise<{ conversions: ConversionRow[]; targets: TargetRow[]; ratio: number; bestRatio: number }> {
  const base = await ensureBaseImage('plain');
  await rm(DIR, { recursive: true, force: true });
  const pool = new WorkerPool({ maxThreads: 1 });
  try {
    const { ctx } = localCloudContext({ id: 'bench-convert', target: 'raw', base, dir: join(DIR, 'convert'), pool });
    await mkdir(ctx.workdir, { recursive: true });
    const overlay = await createOverlay(ctx);
    const conversions: ConversionRow[] = [];
    const formats: [QemuFormat, Record<string, string>][] = [
      ['raw', {}],
      ['qcow2', {}],
      ['vpc', { subformat: 'fixed', force_size: 'on' }],
      ['vmdk', { subformat: 'streamOptimized' }],
    ];
    for (const [format, options] of formats) {
      const out = join(DIR, 'convert', `out.${format}`);
      const o = Object.entries(options).map(([k, v]) => `${k}=${v}`).join(',');
      const alone: number[] = [];
      const factory: number[] = [];
      const rounds = options.subformat === 'streamOptimized' ? SLOW_ROUNDS : ROUNDS;
      for (let i = 0; i < rounds; i++) {
        // Alternate which goes first, so page-cache warmth favours neither.
        const runAlone = async () => {
          await rm(out, { force: true });
          alone.push(await timeCommand('qemu-img', ['convert', ...convertFlags(format, options), '-f', 'qcow2', '-O', format, ...(o ? ['-o', o] : []), overlay.path, out]));
        };
        const runFactory = async () => {
          await rm(out, { force: true });
          const started = process.hrtime.bigint();
          await convertDisk(ctx, { from: { path: overlay.path, format: 'qcow2' }, to: out, format, options, activity: 'bench' });
          factory.push(Number(process.hrtime.bigint() - started) / 1e9);
        };
        if (i % 2) {
          await runAlone();
          await runFactory();
        } else {
          await runFactory();
          await runAlone();
        }
      }
      await rm(out, { force: true });
      const a = median(alone);
      const f = median(factory);
      const ab = Math.min(...alone);
      const fb = Math.min(...factory);
      conversions.push({ format: format + (options.subformat ? ` ${options.subformat}` : ''), alone: a, factory: f, ratio: f / a, aloneBest: ab, factoryBest: fb, bestRatio: fb / ab });
    }

    const targets: TargetRow[] = [];
    const cases: [string, string, Record<string, unknown>][] = [
      ['ec2', 'EC2', { skip_ec2_modifications: true }],
      ['openstack-kvm', 'Formats', {}],
      ['gce', 'GCE', {}],
      ['azure', 'HyperV', {}],
      ['vsphere', 'VSphere', {}],
      ['ova', 'OVA', {}],
      ['rhevm', 'RHEVM', {}],
      ['docker', 'Docker', {}],
      ['vhdx', 'Formats', {}],
    ];
    for (const [target, id, parameters] of cases) {
      const plugin = await BUILTIN_CLOUD_PLUGINS[id]!();
      // openstack-kvm's own plugin always wants cloud-init (a boot on this base): its qcow2 conversion is timed through the qcow2 target.
      const as = target === 'openstack-kvm' ? 'qcow2' : target;
      const { ctx: t, recorded } = localCloudContext({ id: `bench-${target}`, target: as, base, dir: join(DIR, target), pool, parameters });
      let s = process.hrtime.bigint();
      await plugin.adapt.run(t);
      const adapt = Number(process.hrtime.bigint() - s) / 1e9;
      s = process.hrtime.bigint();
      await plugin.convert.run(t);
      const convert = Number(process.hrtime.bigint() - s) / 1e9;
      const size = (await stat(t.outputPath)).size;
      targets.push({ target: target === 'openstack-kvm' ? 'openstack-kvm (qcow2)' : target, adapt, convert, size, format: String(recorded.properties.format ?? '') });
      await plugin.convert.undo(t);
      await plugin.adapt.undo(t);
    }
    return { conversions, targets, ratio: Math.max(...conversions.map((c) => c.ratio)), bestRatio: Math.max(...conversions.map((c) => c.bestRatio)) };
  } finally {
    await pool.destroy();
    await rm(DIR, { recursive: true, force: true });
  }
}
