import { spawn } from 'node:child_process';
import type { RunResult } from '../os/plugin.js';

/** Environment variable that marks every process of a build, so leftovers can be found after a crash. */
export const BUILD_ID_ENV = 'IMAGEFACTORY_BUILD_ID';

const TAIL_BYTES = 64 * 1024;
const KILL_GRACE_MS = 2000;

export interface RunOptions {
  buildId: string;
  signal: AbortSignal;
  log: (line: string) => void;
  cwd?: string;
  env?: Record<string, string>;
  input?: string;
}

/**
 * Runs a program in its own process group, streaming its output to the build
 * log. On abort the whole group gets SIGTERM, then SIGKILL after a grace
 * period, so nothing the program started outlives the build.
 */
export function runProcess(command: string, args: string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal.aborted) return reject(abortError(command));
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env, [BUILD_ID_ENV]: opts.buildId },
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const collect = (which: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      for (const line of text.split('\n')) if (line) opts.log(line);
      if (which === 'stdout') stdout = (stdout + text).slice(-TAIL_BYTES);
      else stderr = (stderr + text).slice(-TAIL_BYTES);
    };
    child.stdout.on('data', collect('stdout'));
    child.stderr.on('data', collect('stderr'));
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');

    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });

    child.on('error', (err) => {
      opts.signal.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.on('close', (code, sig) => {
      opts.signal.removeEventListener('abort', onAbort);
      // The leader is gone; make sure its group is too.
      killGroup(child.pid, 'SIGKILL');
      if (killTimer) clearTimeout(killTimer);
      if (opts.signal.aborted) return reject(abortError(command));
      resolve({ code: code ?? 128 + (sig ? signalNumber(sig) : 0), stdout, stderr });
    });
  });
}

export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function abortError(command: string): Error {
  const e = new Error(`${command} was stopped because the build was aborted`);
  e.name = 'AbortError';
  return e;
}

function signalNumber(sig: NodeJS.Signals): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[sig] ?? 0;
}
