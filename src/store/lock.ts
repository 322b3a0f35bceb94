import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from './errors.js';

/**
 * One user of a storage path at a time. Two daemons (or a daemon and an
 * `imagefactory build`) on the same storage would both resume the same
 * builds, reap each other's guests and delete each other's work.
 *
 * The lock is an exclusive SQLite transaction held on `<storage>/lock.sqlite`
 * for as long as the holder lives: SQLite takes it with fcntl(2) locks, which
 * the kernel drops when the process ends however it ends (kill -9 included),
 * so a crash never leaves a stale lock. Who holds it is written next to it,
 * in `lock.json`, for the error a second user gets.
 */

export interface StorageLock {
  /** The storage directory locked. */
  readonly storagePath: string;
  /** Gives the storage up; safe to call twice. */
  release(): void;
}

export interface LockHolder {
  pid: number;
  program: string;
  since: string;
}

const LOCK_DB = 'lock.sqlite';
const HOLDER = 'lock.json';

/** The holder written by the process that has the lock, or null when unreadable. */
export function lockHolder(storagePath: string): LockHolder | null {
  try {
    const h = JSON.parse(readFileSync(join(storagePath, HOLDER), 'utf8')) as Partial<LockHolder>;
    return typeof h.pid === 'number' ? { pid: h.pid, program: String(h.program ?? 'unknown'), since: String(h.since ?? '') } : null;
  } catch {
    return null;
  }
}

/**
 * Takes the storage path for this process (`program` names it for others:
 * `imagefactoryd`, `imagefactory build`). Throws StoreError `storage_locked`,
 * naming the holder's pid, when another process has it.
 */
export function lockStorage(storagePath: string, program: string): StorageLock {
  mkdirSync(storagePath, { recursive: true, mode: 0o700 });
  closeSync(openSync(join(storagePath, LOCK_DB), 'a', 0o600));
  const db = new Database(join(storagePath, LOCK_DB), { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (e) {
    db.close();
    if (e instanceof Database.SqliteError && /^SQLITE_BUSY/.test(e.code)) {
      const holder = lockHolder(storagePath);
      const who = holder ? `${holder.program} (pid ${holder.pid}, since ${holder.since})` : 'another process';
      throw new StoreError('storage_locked', `the storage path ${storagePath} is in use by ${who}; stop it first, or give this one another storage_path`, {
        cause: e,
        details: { storagePath, ...(holder ? { pid: holder.pid, program: holder.program, since: holder.since } : {}) },
      });
    }
    throw e;
  }
  writeFileSync(join(storagePath, HOLDER), `${JSON.stringify({ pid: process.pid, program, since: new Date().toISOString() })}\n`, { mode: 0o600 });
  let released = false;
  return {
    storagePath,
    release() {
      if (released) return;
      released = true;
      if (lockHolder(storagePath)?.pid === process.pid) rmSync(join(storagePath, HOLDER), { force: true });
      try {
        db.exec('ROLLBACK');
      } finally {
        db.close();
      }
    },
  };
}
