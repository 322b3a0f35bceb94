import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PoolDestroyedError, PoolTaskCancelledError, PoolWorkerMissingError, WorkerPool } from '../../src/pool/index.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const STUCK_WORKER = fileURLToPath(new URL('./fixtures/stuck-worker.mjs', import.meta.url));
const POOL_MODULE = fileURLToPath(new URL('../../dist/src/pool/index.js', import.meta.url));

let dir: string;
let random64: string;
let random64Digest: string;
let empty: string;
let sparse512: string;
let sparse1g: string[];
const pools: WorkerPool[] = [];

function pool(options: ConstructorParameters<typeof WorkerPool>[0] = {}): WorkerPool {
  const created = new WorkerPool(options);
  pools.push(created);
  return created;
}

const sha256Of = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** The sha256 of `size` zero bytes, without allocating them all. */
function zerosDigest(size: number): string {
  const hash = createHash('sha256');
  const chunk = Buffer.alloc(4 * MiB);
  for (let left = size; left > 0; left -= chunk.length) hash.update(chunk.subarray(0, Math.min(left, chunk.length)));
  return hash.digest('hex');
}
let zeros1gDigest: string;

/** Resolves with the rejection of `promise` and the time it took, failing if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${String(value)}`);
    },
    (error: unknown) => error,
  );
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pool-test-'));
  const data = randomBytes(64 * MiB);
  random64Digest = sha256Of(data);
  random64 = join(dir, 'random64');
  await writeFile(random64, data);
  empty = join(dir, 'empty');
  await writeFile(empty, '');
  sparse512 = join(dir, 'sparse512');
  sparse1g = [join(dir, 'sparse1g-a'), join(dir, 'sparse1g-b')];
  zeros1gDigest = zerosDigest(GiB);
  for (const [file, size] of [[sparse512, 512 * MiB], ...sparse1g.map((f) => [f, GiB] as const)] as const) {
    await writeFile(file, '');
    await truncate(file, size);
  }
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.destroy()));
  await rm(dir, { recursive: true, force: true });
});

describe('WorkerPool.sha256', () => {
  it('gives the same digest as node:crypto for a random 64 MiB file', async () => {
    const started = performance.now();
    const digest = await pool({ maxThreads: 1 }).sha256(random64);
    const seconds = (performance.now() - started) / 1000;
    console.info(`sha256 of 64 MiB random: ${(64 / seconds).toFixed(0)} MiB/s (including thread start)`);
    expect(digest).toBe(random64Digest);
  });

  it('gives the digest of nothing for an empty file, and reports 0 of 0', async () => {
    const calls: [number, number][] = [];
    const digest = await pool({ maxThreads: 1 }).sha256(empty, { onProgress: (done, total) => calls.push([done, total]) });
    expect(digest).toBe(sha256Of(Buffer.alloc(0)));
    expect(calls).toEqual([[0, 0]]);
  });

  it('hashes only the requested range of a file', async () => {
    const data = randomBytes(10 * MiB);
    const file = join(dir, 'ranged');
    await writeFile(file, data);
    const digest = await pool({ maxThreads: 1 }).sha256(file, { range: { offset: 123_457, length: 5 * MiB + 3 } });
    expect(digest).toBe(sha256Of(data.subarray(123_457, 123_457 + 5 * MiB + 3)));
  });

  it('rejects a range that goes past the end of the file', async () => {
    const error = await rejection(pool({ maxThreads: 1 }).sha256(empty, { range: { offset: 0, length: 1 } }));
    expect(String(error)).toMatch(/past the end/);
  });

  it('rejects a file that does not exist with the file system error, not as cancelled', async () => {
    const error = await rejection(pool({ maxThreads: 1 }).sha256(join(dir, 'absent')));
    expect(error).not.toBeInstanceOf(PoolTaskCancelledError);
    expect(String(error)).toMatch(/ENOENT/);
  });

  it('reports progress that increases strictly, with a constant total, ending at the total before it resolves', async () => {
    const calls: [number, number][] = [];
    await pool({ maxThreads: 1 }).sha256(random64, { onProgress: (done, total) => calls.push([done, total]) });
    expect(calls.length).toBeGreaterThan(2);
    expect(calls[0]).toEqual([0, 64 * MiB]);
    expect(calls.at(-1)).toEqual([64 * MiB, 64 * MiB]);
    for (let i = 1; i < calls.length; i++) expect(calls[i]![0]).toBeGreaterThan(calls[i - 1]![0]);
    expect(new Set(calls.map(([, total]) => total))).toEqual(new Set([64 * MiB]));
  });

  it('keeps the event loop responsive while two tasks hash 1 GiB files, with throttled progress', async () => {
    const workers = pool({ maxThreads: 2 });
    const reports = [0, 0];
    let maxLag = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 10);
      last = now;
    }, 10);
    const started = performance.now();
    let digests: string[];
    try {
      digests = await Promise.all(sparse1g.map((file, i) => workers.sha256(file, { onProgress: () => reports[i]!++ })));
    } finally {
      clearInterval(ticker);
    }
    const seconds = (performance.now() - started) / 1000;
    expect(digests).toEqual([zeros1gDigest, zeros1gDigest]);
    console.info(`2 × 1 GiB sparse in parallel: ${((2 * 1024) / seconds).toFixed(0)} MiB/s in all, max event-loop lag ${maxLag.toFixed(1)} ms, progress reports ${reports.join(' + ')}`);
    // Hashing 2 GiB on the event loop would block it for seconds; a busy CI machine alone accounts for tens of milliseconds.
    expect(maxLag).toBeLessThan(250);
    // At most one report per 1 % plus one per 100 ms, plus the first and the last.
    for (const count of reports) expect(count).toBeLessThanOrEqual(100 + Math.ceil((seconds * 1000) / 100) + 2);
  }, 60_000);
});

describe('WorkerPool cancellation', () => {
  it('rejects with code cancelled within a second of the abort, the task stopping by itself mid-way', async () => {
    const controller = new AbortController();
    let lastDone = 0;
    let abortedAt = 0;
    const task = pool({ maxThreads: 1, cancelGraceMs: 10_000 }).sha256(sparse512, {
      signal: controller.signal,
      onProgress: (done) => {
        lastDone = done;
        if (done > 0 && !abortedAt) {
          abortedAt = performance.now();
          controller.abort(new Error('user cancelled'));
        }
      },
    });
    const error = await rejection(task);
    const latency = performance.now() - abortedAt;
    console.info(`cooperative cancel: rejected ${latency.toFixed(1)} ms after the abort`);
    expect(error).toBeInstanceOf(PoolTaskCancelledError);
    expect(error).toMatchObject({ code: 'cancelled', terminated: false });
    expect((error as PoolTaskCancelledError).reason).toEqual(new Error('user cancelled'));
    expect(lastDone).toBeLessThan(512 * MiB);
    expect(latency).toBeLessThan(1000);
  }, 30_000);

  it('rejects at once, without running, when the signal is already aborted', async () => {
    const calls: number[] = [];
    const error = await rejection(pool({ maxThreads: 1 }).sha256(random64, { signal: AbortSignal.abort(), onProgress: (done) => calls.push(done) }));
    expect(error).toMatchObject({ code: 'cancelled' });
    expect(calls).toEqual([]);
  });

  it('removes a queued task at once, without disturbing the running one', async () => {
    const workers = pool({ maxThreads: 1, cancelGraceMs: 10_000 });
    const running = workers.sha256(sparse1g[0]!);
    const controller = new AbortController();
    const queued = workers.sha256(random64, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const abortedAt = performance.now();
    controller.abort();
    const error = await rejection(queued);
    expect(performance.now() - abortedAt).toBeLessThan(200);
    expect(error).toMatchObject({ code: 'cancelled', terminated: false });
    expect(await running).toBe(zeros1gDigest);
  }, 30_000);

  it('terminates a task that ignores the cooperative cancel once the grace period is over, and the pool keeps working', async () => {
    const workers = pool({ maxThreads: 1, cancelGraceMs: 300, sha256Worker: STUCK_WORKER });
    const controller = new AbortController();
    const task = workers.sha256('stuck', { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 200)); // let it start and spin
    const abortedAt = performance.now();
    controller.abort();
    const error = await rejection(task);
    const latency = performance.now() - abortedAt;
    expect(error).toBeInstanceOf(PoolTaskCancelledError);
    expect(error).toMatchObject({ code: 'cancelled', terminated: true });
    expect(latency).toBeGreaterThanOrEqual(290);
    expect(latency).toBeLessThan(1300);
    // The only thread was the stuck one: a new task can run only if it was really terminated.
    expect(await workers.sha256('fine')).toBe('ok');
  }, 30_000);

  it('destroy() cancels the running tasks, then refuses new ones', async () => {
    const workers = pool({ maxThreads: 1 });
    const task = workers.sha256(sparse1g[1]!);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await workers.destroy();
    expect(await rejection(task)).toMatchObject({ code: 'cancelled', reason: expect.any(PoolDestroyedError) });
    expect(await rejection(workers.sha256(empty))).toBeInstanceOf(PoolDestroyedError);
  }, 30_000);
});

describe('WorkerPool setup', () => {
  it('says to run the build when the worker module is missing', () => {
    expect(() => new WorkerPool({ sha256Worker: join(dir, 'missing.js') })).toThrow(PoolWorkerMissingError);
    expect(() => new WorkerPool({ sha256Worker: join(dir, 'missing.js') })).toThrow(/npm run build/);
  });

  it('lets a process that used the pool exit by itself, after a finished and a cancelled task, without destroy()', async () => {
    const script = `
      const { WorkerPool } = await import(${JSON.stringify(POOL_MODULE)});
      const pool = new WorkerPool({ maxThreads: 1 });
      console.log(await pool.sha256(${JSON.stringify(random64)}));
      await pool.sha256(${JSON.stringify(sparse512)}, { signal: AbortSignal.timeout(50) }).catch((e) => console.log(e.code));
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the process did not exit; output so far: ${out}`));
      }, 10_000);
      child.on('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    expect(code).toBe(0);
    expect(out.trim().split('\n')).toEqual([random64Digest, 'cancelled']);
  }, 15_000);
});
