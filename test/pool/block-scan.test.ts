// The pool's block scan: non-zero blocks and their SHA-256, a short last block padded with zeros.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PoolTaskCancelledError, WorkerPool } from '../../src/pool/index.js';

const BS = 512 * 1024;
let dir: string;
let file: string;
let pool: WorkerPool;
const data = new Map<number, Buffer>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'block-scan-test-'));
  file = join(dir, 'disk.raw');
  pool = new WorkerPool({ maxThreads: 1 });
  const handle = await open(file, 'w');
  data.set(0, randomBytes(BS));
  await handle.write(data.get(0)!, 0, BS, 0);
  await handle.write(Buffer.alloc(BS), 0, BS, BS); // written zeros: allocated but empty
  const tail = randomBytes(1000);
  await handle.write(tail, 0, tail.length, 3 * BS);
  data.set(3, Buffer.concat([tail, Buffer.alloc(BS - tail.length)]));
  await handle.close();
});

afterAll(async () => {
  await pool.destroy();
  await rm(dir, { recursive: true, force: true });
});

it('returns only the blocks with data, each with the base64 SHA-256 of the whole (padded) block', async () => {
  const progress: number[] = [];
  const found = await pool.scanBlocks(file, { blockSize: BS, indexes: [0, 1, 2, 3], onProgress: (done) => progress.push(done) });
  expect(found).toEqual([0, 3].map((index) => ({ index, sha256: createHash('sha256').update(data.get(index)!).digest('base64') })));
  expect(progress.at(-1)).toBe(4);
});

it('is cancelled by its signal', async () => {
  const abort = new AbortController();
  abort.abort();
  await expect(pool.scanBlocks(file, { blockSize: BS, indexes: [0], signal: abort.signal })).rejects.toBeInstanceOf(PoolTaskCancelledError);
});
