import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Daemon mode without fork(): the command starts itself again as a detached
 * process (its own session, no terminal, stdin closed, stdout and stderr
 * appended to the log file) and waits for it to say it listens — or why it
 * could not start — before it exits. The detached process knows it is one by
 * `DETACHED_ENV` and its IPC channel, which it closes once started.
 */

export const DETACHED_ENV = 'IMAGEFACTORYD_DETACHED';
export const DEFAULT_PID_FILE = '/run/imagefactoryd.pid';
export const DEFAULT_LOG_FILE = '/var/log/imagefactory/imagefactoryd.log';

export type StartMessage = { type: 'ready'; url: string; pid: number; metricsUrl: string | null } | { type: 'failed'; exitCode: number; message: string };

/** True in the detached daemon started by `detach()`; the marker is then removed, so that the daemon's own children do not inherit it. */
export function isDetachedChild(): boolean {
  const detached = process.env[DETACHED_ENV] === '1' && typeof process.send === 'function';
  delete process.env[DETACHED_ENV];
  return detached;
}

/** Tells the starting command how the start went, then lets it go. */
export function reportStart(message: StartMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => {
      process.disconnect?.();
      resolve();
    });
  });
}

export interface DetachOptions {
  /** The daemon's own arguments, as given. */
  argv: readonly string[];
  logFile: string;
  /** How long the daemon may take to start (engine recovery included). */
  timeoutMs?: number;
}

/** Starts the detached daemon; resolves with what it reported, or a failure if it exited or said nothing in time. */
export function detach(opts: DetachOptions): Promise<StartMessage> {
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const out = openSync(opts.logFile, 'a', 0o640);
  const script = process.argv[1]!;
  const child = spawn(process.execPath, [...process.execArgv, script, ...opts.argv], {
    detached: true,
    stdio: ['ignore', out, out, 'ipc'],
    env: { ...process.env, [DETACHED_ENV]: '1' },
  });
  closeSync(out);
  return new Promise((resolve) => {
    let done = false;
    const finish = (message: StartMessage) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.removeAllListeners();
      if (child.connected) child.disconnect();
      child.unref();
      resolve(message);
    };
    const timer = setTimeout(
      () => finish({ type: 'failed', exitCode: 1, message: `the daemon (pid ${child.pid}) did not report within ${Math.round((opts.timeoutMs ?? 120_000) / 1000)} s that it listens; see ${opts.logFile}` }),
      opts.timeoutMs ?? 120_000,
    );
    child.on('message', (m: StartMessage) => finish(m));
    child.on('error', (e) => finish({ type: 'failed', exitCode: 1, message: `cannot start the daemon: ${e.message}` }));
    child.on('exit', (code, signal) => finish({ type: 'failed', exitCode: code ?? 1, message: `the daemon exited during start-up (${signal ?? `code ${code}`}); see ${opts.logFile}` }));
  });
}
