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
    const lines = { stdout: lineSplitter(opts.log), stderr: lineSplitter(opts.log) };
    const collect = (which: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      lines[which].push(text);
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
      lines.stdout.end();
      lines.stderr.end();
      // The leader is gone; make sure its group is too.
      killGroup(child.pid, 'SIGKILL');
      if (killTimer) clearTimeout(killTimer);
      if (opts.signal.aborted) return reject(abortError(command));
      resolve({ code: code ?? 128 + (sig ? signalNumber(sig) : 0), stdout, stderr });
    });
  });
}

/** The longest line passed on whole; a longer one (a tool printing without newlines) is passed on in pieces. */
export const MAX_LINE = 8192;

/**
 * Cuts output into lines as they complete, at a newline or a carriage
 * return (progress meters redraw with `\r`), keeping the unfinished rest
 * for the next chunk, never more than MAX_LINE of it.
 */
export function lineSplitter(onLine: (line: string) => void): { push(text: string): void; end(): void } {
  let rest = '';
  return {
    push(text) {
      const parts = (rest + text).split(/\r\n|[\r\n]/);
      rest = parts.pop() ?? '';
      for (const line of parts) if (line) onLine(line);
      while (rest.length > MAX_LINE) {
        onLine(rest.slice(0, MAX_LINE));
        rest = rest.slice(MAX_LINE);
      }
    },
    end() {
      if (rest) onLine(rest);
      rest = '';
    },
  };
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
