import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockHolder, lockStorage } from '../../src/store/lock.js';

/** One process at a time on a storage path, across processes, with no stale lock after a crash. */

const LOCK_TS = fileURLToPath(new URL('../../src/store/lock.ts', import.meta.url));
let dir: string;
const children: ChildProcess[] = [];

beforeEach(() => {
  dir = mkdtempSync('/var/tmp/h11-lock-');
});
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Another process that takes the lock, says so, and holds it until killed; or reports the error it got. */
function holder(storage: string): Promise<{ child: ChildProcess; said: string }> {
  const script = `import { lockStorage } from ${JSON.stringify(LOCK_TS)};
try { lockStorage(${JSON.stringify(storage)}, 'imagefactoryd'); console.log('locked'); setInterval(() => {}, 1000); }
catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, details: e.details })); process.exit(3); }`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (t: string) => {
      out += t;
      if (out.includes('\n')) resolve({ child, said: out.trim() });
    });
    child.once('exit', (code) => (out.includes('\n') ? undefined : reject(new Error(`holder exited ${code}: ${out}`))));
  });
}

const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

describe('the storage lock', () => {
  it('stops a second process with an error naming the holder, and frees the path when the holder dies by kill -9', async () => {
    const { child, said } = await holder(dir);
    expect(said).toBe('locked');
    expect(lockHolder(dir)).toMatchObject({ pid: child.pid, program: 'imagefactoryd' });

    let error: { code?: string; message?: string; details?: Record<string, unknown> } = {};
    try {
      lockStorage(dir, 'imagefactory build');
    } catch (e) {
      error = e as typeof error;
    }
    expect(error.code).toBe('storage_locked');
    expect(error.message).toContain(`imagefactoryd (pid ${child.pid}`);
    expect(error.details).toMatchObject({ pid: child.pid, storagePath: dir });

    child.kill('SIGKILL');
    await exited(child);
    const mine = lockStorage(dir, 'imagefactory build');
    expect(lockHolder(dir)).toMatchObject({ pid: process.pid, program: 'imagefactory build' });

    // Now this process holds it: another one is refused, naming this pid.
    const second = await holder(dir);
    expect(JSON.parse(second.said)).toMatchObject({ code: 'storage_locked', details: { pid: process.pid } });
    await exited(second.child);
    expect(second.child.exitCode).toBe(3);

    mine.release();
    mine.release();
    expect(lockHolder(dir)).toBeNull();
    const third = await holder(dir);
    expect(third.said).toBe('locked');
  });

  it('refuses a second lock in the same process too, and is free again after release', () => {
    const a = lockStorage(dir, 'one');
    expect(() => lockStorage(dir, 'two')).toThrow(expect.objectContaining({ code: 'storage_locked' }));
    a.release();
    lockStorage(join(dir), 'three').release();
  });

  it('creates a missing storage directory, private', () => {
    const storage = join(dir, 'new', 'storage');
    lockStorage(storage, 'x').release();
    expect(statSync(storage).mode & 0o777).toBe(0o700);
    expect(statSync(join(storage, 'lock.sqlite')).mode & 0o777).toBe(0o600);
  });
});
