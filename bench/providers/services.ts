// Starting and stopping the real services the provider tests talk to (moto, Glance, Keystone, an
// OCI registry): each on a free port of 127.0.0.1, in its own process group, its output in a
// file under the test's directory (grepped for credentials afterwards), stopped after the tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';

export interface Service {
  port: number;
  url: string;
  logFile: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface StartOptions {
  command: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  logFile: string;
  port: number;
  /** Answers (any HTTP status) once the service is up. */
  readyPath?: string;
  readyTimeoutMs?: number;
}

export async function startService(options: StartOptions): Promise<Service> {
  const fd = openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(options.command, options.args, { cwd: options.cwd, env: { ...process.env, ...options.env }, detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  let exited = false;
  child.once('exit', () => (exited = true));
  const url = `http://127.0.0.1:${options.port}`;
  const stop = async () => {
    if (exited || !child.pid) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, 5000);
    await gone;
    clearTimeout(timer);
  };
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (exited) throw new Error(`${options.command} exited before it answered (log: ${options.logFile})`);
    try {
      await fetch(url + (options.readyPath ?? '/'), { signal: AbortSignal.timeout(2000) });
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`${options.command} did not answer on ${url} (log: ${options.logFile})`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { port: options.port, url, logFile: options.logFile, stop };
}
