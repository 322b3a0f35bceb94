import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { processesOfBuild } from '../../src/engine/reaper.js';
import { listQemuProcesses } from '../../src/hypervisor/index.js';
import type { CloudStepContext } from '../../src/clouds/types.js';
import type { TargetContent } from '../../src/clouds/target-content.js';
import { WorkerPool } from '../../src/pool/index.js';
import { localCloudContext, type Recorded } from '../../bench/cloud-context.js';
import type { BaseFixture } from './base-fixture.js';

export type { Recorded };

/** The cloud tests' contexts (bench/cloud-context.ts) under one directory, and what they must not leave. */

/** Per test process: two runs on one machine (two checkouts) must not share a target's directory. */
export const TEST_ROOT = `/var/tmp/imagefactory-cloud-tests/${process.pid}`;

let pool: WorkerPool | null = null;
export function sharedPool(): WorkerPool {
  pool ??= new WorkerPool({ maxThreads: 1 });
  return pool;
}
export async function closePool(): Promise<void> {
  await pool?.destroy();
  pool = null;
  rmSync(TEST_ROOT, { recursive: true, force: true });
}

export function testContext(opts: {
  id: string;
  target: string;
  base: BaseFixture;
  parameters?: Record<string, unknown>;
  targetContent?: TargetContent | null;
  signal?: AbortSignal;
}): { ctx: CloudStepContext; recorded: Recorded; dir: string } {
  const dir = join(TEST_ROOT, opts.id);
  return { ...localCloudContext({ ...opts, dir, pool: sharedPool() }), dir };
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** What a finished (or failed) target build left behind besides its output: temp files, views, processes, guests. */
export function leftovers(ctx: CloudStepContext, keep: string[] = []): string[] {
  const found: string[] = [];
  const dirOf = join(ctx.outputPath, '..');
  for (const name of existsSync(dirOf) ? readdirSync(dirOf) : []) {
    const full = join(dirOf, name);
    if (full === ctx.workdir || full === ctx.outputPath || keep.includes(full) || name === 'qemu-run' || name === 'artifacts') continue;
    found.push(full);
  }
  if (existsSync(`${ctx.outputPath}.partial`)) found.push(`${ctx.outputPath}.partial`);
  // The engine removes the workdir itself; after undo it must hold nothing.
  for (const name of existsSync(ctx.workdir) ? readdirSync(ctx.workdir) : []) found.push(join(ctx.workdir, name));
  const mounts = readFileSync('/proc/mounts', 'utf8');
  for (const line of mounts.split('\n')) if (line.split(' ')[1]?.startsWith(dirOf)) found.push(`mount ${line.split(' ')[1]}`);
  for (const pid of processesOfBuild(ctx.imageId)) found.push(`process ${pid}`);
  for (const q of listQemuProcesses()) if (q.name.includes(ctx.imageId)) found.push(`qemu ${q.name}`);
  return found;
}

/** Files in the workdir other than the overlay and its marker (what a step must not leave). */
export function workdirLeftovers(ctx: CloudStepContext): string[] {
  if (!existsSync(ctx.workdir)) return [];
  return readdirSync(ctx.workdir).filter((n) => n !== 'overlay.qcow2' && n !== 'adapted.json');
}

export function removeTestDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
