import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * The pid file of a running daemon: created exclusively, so that a second
 * daemon on the same file refuses to start; a file left by a daemon that
 * died (its pid gone, or now another program's) is replaced.
 */

export type PidFileErrorCode = 'already_running' | 'pid_file_unwritable';

export class PidFileError extends Error {
  constructor(
    readonly code: PidFileErrorCode,
    message: string,
    readonly pid?: number,
  ) {
    super(message);
    this.name = 'PidFileError';
  }
}

/** Whether `pid` is a live imagefactoryd (not a zombie, not a program that got the pid since). */
export function isDaemonAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else; that is alive.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') return false;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('imagefactoryd');
  } catch {
    // No /proc (not Linux): trust kill(0).
    return true;
  }
}

/** The pid a pid file names, or null when it names none. */
export function readPidFile(path: string): number | null {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

/** Throws `already_running` when the file names a live daemon other than this process. */
export function refuseIfRunning(path: string): void {
  const pid = readPidFile(path);
  if (pid !== null && pid !== process.pid && isDaemonAlive(pid)) {
    throw new PidFileError('already_running', `imagefactoryd is already running with pid ${pid} (pid file ${path}); stop it first (kill ${pid}) or choose another pid_file`, pid);
  }
}

export interface PidFile {
  readonly path: string;
  /** Removes the file if it still names this process. */
  release(): void;
}

export function acquirePidFile(path: string): PidFile {
  for (let attempt = 0; ; attempt++) {
    try {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new PidFileError('pid_file_unwritable', `cannot write the pid file ${path}: ${(e as Error).message}`);
      refuseIfRunning(path);
      if (attempt > 0) throw new PidFileError('already_running', `the pid file ${path} keeps appearing: another imagefactoryd is starting on it`);
      // Left by a daemon that is gone.
      rmSync(path, { force: true });
    }
  }
  return {
    path,
    release() {
      if (readPidFile(path) === process.pid) rmSync(path, { force: true });
    },
  };
}
