import { spawn, type ChildProcess } from 'node:child_process';
import { BUILD_ID_ENV } from '../src/engine/process.js';

/**
 * Boots a disk image under qemu with its first serial port on a pipe, so a
 * test or benchmark can wait for a login prompt, log in and run commands,
 * as a person at the console would. Nothing is written to the image
 * (`-snapshot`). Shared by the end-to-end tests and the benchmarks.
 */
export interface ConsoleSession {
  /** Everything the console printed so far. */
  output(): string;
  /** Resolves when `pattern` appears after `from` (default: what was printed before the call is ignored). */
  waitFor(pattern: RegExp, timeoutMs: number, from?: number): Promise<RegExpExecArray>;
  send(text: string): void;
  /** Logs in as root, waits for the shell prompt and keeps kernel messages off the console. */
  login(password: string, timeoutMs: number): Promise<void>;
  /** Runs a shell command line and resolves with what it printed (between two markers). */
  run(command: string, timeoutMs?: number): Promise<string>;
  /** Kills qemu and waits for it to be gone. */
  close(): Promise<void>;
  proc: ChildProcess;
}

export function bootConsole(image: string, opts: { format?: 'qcow2' | 'raw'; memoryMiB?: number; tag?: string; extraArgs?: string[] } = {}): ConsoleSession {
  return consoleOf(
    'qemu-system-x86_64',
    [
      '-accel', 'tcg', '-m', String(opts.memoryMiB ?? 1024), '-smp', '2',
      '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-snapshot', '-no-reboot',
      '-drive', `file=${image},format=${opts.format ?? 'qcow2'},if=virtio`,
      '-nic', 'user,model=virtio-net-pci',
      ...(opts.extraArgs ?? []),
    ],
    opts.tag,
  );
}

/**
 * Runs a given qemu command line (e.g. the one `imagefactory build` prints,
 * with `-nographic`: the console on stdio) as a console session.
 */
export function consoleOf(command: string, args: string[], tag = 'console'): ConsoleSession {
  // Tagged like a build's processes, so a leak check finds it.
  const proc = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, [BUILD_ID_ENV]: tag } });
  const watched = watchOutput(proc, 'qemu');
  const out = () => watched.output();
  let ended = false;
  void watched.ended.then(() => (ended = true));

  const session: ConsoleSession = {
    proc,
    output: out,
    waitFor: (pattern, timeoutMs, from = out().length) => watched.waitFor(pattern, timeoutMs, from),
    send(text) {
      proc.stdin!.write(text);
    },
    async login(password, timeoutMs) {
      const start = 0;
      await session.waitFor(/login: *$/m, timeoutMs, start);
      let mark = out().length;
      session.send('root\n');
      await session.waitFor(/Password: *$/m, 30_000, mark);
      mark = out().length;
      session.send(`${password}\n`);
      await session.waitFor(/# *$/m, 30_000, mark);
      // Kernel messages share the console with the shell (a TCG guest under load
      // prints e.g. "hrtimer: interrupt took …" at any time) and would land in the
      // middle of a command's output; only emergencies are printed from here on.
      await session.run('echo 1 > /proc/sys/kernel/printk');
    },
    async run(command, timeoutMs = 30_000) {
      const id = Math.random().toString(36).slice(2, 8);
      const mark = out().length;
      // The markers are built by the shell, so the echoed command line never matches them.
      session.send(`echo BEGIN-$((6*7))-${id}; ${command}; echo END-$((6*7))-${id}\n`);
      const m = await session.waitFor(new RegExp(`BEGIN-42-${id}\\r?\\n([\\s\\S]*?)END-42-${id}`), timeoutMs, mark);
      return m[1]!.replace(/\r/g, '');
    },
    async close() {
      if (!ended) proc.kill('SIGKILL');
      await watched.ended;
    },
  };
  return session;
}

export interface WatchedOutput {
  /** Everything stdout and stderr printed so far, interleaved as it came. */
  output(): string;
  /** Resolves when `pattern` appears in what was printed from offset `from` on; rejects after `timeoutMs`, or when the process has ended without it. */
  waitFor(pattern: RegExp, timeoutMs: number, from: number): Promise<RegExpExecArray>;
  /** Resolves once the process has ended and its output is all read. */
  ended: Promise<void>;
}

/** Collects a child process's output and waits for patterns in it (a console, a command run as a terminal would). */
export function watchOutput(proc: ChildProcess, what: string): WatchedOutput {
  let out = '';
  let ended = false;
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of waiters) w();
  };
  const onData = (d: Buffer) => {
    out += d.toString('utf8');
    wake();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const endedPromise = new Promise<void>((resolve) => proc.on('close', () => resolve()));
  void endedPromise.then(() => {
    ended = true;
    wake();
  });
  return {
    output: () => out,
    ended: endedPromise,
    waitFor(pattern, timeoutMs, from) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = new RegExp(pattern.source, pattern.flags.replace('g', '')).exec(out.slice(from));
          if (m) return done(() => resolve(m));
          if (ended) done(() => reject(new Error(`${what} ended before ${pattern} appeared; output tail:\n${out.slice(-3000)}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`${pattern} did not appear within ${timeoutMs} ms; output tail:\n${out.slice(-3000)}`))), timeoutMs);
        const done = (fn: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          fn();
        };
        waiters.add(check);
        check();
      });
    },
  };
}
