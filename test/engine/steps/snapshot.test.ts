import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { snapshot } from '../../../src/engine/steps/snapshot.js';
import { WorkerPool } from '../../../src/pool/index.js';
import { stepTestEnv } from './env.js';

const MiB = 1024 * 1024;
let pool: WorkerPool;
beforeAll(() => {
  pool = new WorkerPool({ maxThreads: 1 });
});
afterAll(async () => pool.destroy());
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

/** A sparse raw disk of `size` with a few MiB of data in it, as an OS plugin leaves it. */
async function rawDisk(path: string, size: number): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  const fh = await open(path, 'w');
  await fh.truncate(size);
  await fh.write(Buffer.alloc(2 * MiB, 0x5a), 0, 2 * MiB, 10 * MiB);
  await fh.close();
}

const qemuInfo = (file: string) => JSON.parse(execFileSync('qemu-img', ['info', '--output=json', file]).toString());

describe('the snapshot step', () => {
  it('moves the disk into the warehouse as the body, checksums it with progress, freezes it and records it', async () => {
    const t = stepTestEnv({ pool });
    cleanups.push(t.cleanup);
    await rawDisk(t.env.diskPath, 64 * MiB);
    await snapshot.run(t.env, new AbortController().signal);

    const body = t.env.bodies.pathFor(t.env.id);
    expect(qemuInfo(body)).toMatchObject({ format: 'raw', 'virtual-size': 64 * MiB });
    expect(t.image().properties).toMatchObject({ sha256: createHash('sha256').update(readFileSync(body)).digest('hex'), size: 64 * MiB, format: 'raw' });
    expect(t.image().bodyPath).toBe(body);
    expect(statSync(body).mode & 0o222).toBe(0);
    expect(existsSync(t.env.diskPath)).toBe(false);
    expect(t.progress.map(([, a]) => a)).toContain('Checksumming the image body (sha256)');
    expect(t.progress.map(([p]) => p)).toEqual([...t.progress.map(([p]) => p)].sort((a, b) => a - b));
  });

  it('records a qcow2 disk as qcow2', async () => {
    const t = stepTestEnv({ pool });
    cleanups.push(t.cleanup);
    await mkdir(t.env.workdir, { recursive: true });
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', t.env.diskPath, '16M']);
    await snapshot.run(t.env, new AbortController().signal);
    expect(t.image().properties.format).toBe('qcow2');
  });

  it('is repeatable: a body already in place is checksummed again, and without disk or body it fails disk_missing', async () => {
    const t = stepTestEnv({ pool });
    cleanups.push(t.cleanup);
    await rawDisk(t.env.diskPath, 16 * MiB);
    await snapshot.run(t.env, new AbortController().signal);
    const first = t.image().properties.sha256;
    expect(await snapshot.canResume(t.env)).toBe(true);
    await snapshot.run(t.env, new AbortController().signal);
    expect(t.image().properties.sha256).toBe(first);

    const empty = stepTestEnv({ pool });
    cleanups.push(empty.cleanup);
    expect(await snapshot.canResume(empty.env)).toBe(false);
    await expect(snapshot.run(empty.env, new AbortController().signal)).rejects.toMatchObject({ code: 'disk_missing' });
  });

  it('stops when cancelled while checksumming; undo removes the body, twice safely', async () => {
    const t = stepTestEnv({ pool });
    cleanups.push(t.cleanup);
    await rawDisk(t.env.diskPath, 2048 * MiB);
    const abort = new AbortController();
    const running = snapshot.run(t.env, abort.signal);
    setTimeout(() => abort.abort(), 50);
    await expect(running).rejects.toThrow();
    expect(t.image().properties.sha256).toBeUndefined();
    await snapshot.undo(t.env);
    await snapshot.undo(t.env);
    expect(t.env.bodies.exists(t.env.id)).toBe(false);
    expect(t.image().bodyPath).toBeNull();
  });

  it('covers the last 15 % of progress', () => {
    expect(snapshot.progress).toEqual([85, 100]);
  });
});
