import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../src/version.js';

/** Runs the built `imagefactoryd` as a separate process, as a user would; shared by the daemon tests and the benchmarks. */
export const DAEMON_BIN = join(PROJECT_ROOT, 'dist', 'src', 'cli', 'imagefactoryd.js');

export interface DaemonExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Daemon {
  url: string;
  proc: ChildProcess;
  /** Everything written on stdout and stderr. */
  output(): string;
  stderr(): string;
  exited: Promise<DaemonExit>;
  stop(signal?: NodeJS.Signals): Promise<DaemonExit>;
}

/**
 * A scratch area with a configuration file pointing storage, imgdir and
 * tmpdir into it. `storagePathLength` makes the storage path exactly that
 * long, as an operator's deep directory would be.
 */
export function daemonHome(plugins: string, extra: Record<string, unknown> = {}, opts: { storagePathLength?: number } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'if-daemon-test-'));
  let storage = join(root, 'storage');
  if (opts.storagePathLength) {
    const deep = join(root, 'an-operator-s-deep-storage-directory/'.repeat(Math.ceil(opts.storagePathLength / 37)));
    storage = deep.slice(0, opts.storagePathLength).replace(/\/+$/, '').padEnd(opts.storagePathLength, 'x');
  }
  const dirs = { storage, imgdir: join(root, 'images'), tmpdir: join(root, 'tmp') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const config = join(root, 'imagefactory.conf');
  writeFileSync(
    config,
    // Downloaded media and bootstrapped trees stay in the scratch area; the package cache is shared (it only saves downloads).
    JSON.stringify({ image_manager_args: { storage_path: dirs.storage }, imgdir: dirs.imgdir, tmpdir: dirs.tmpdir, media_cache: join(root, 'media'), tree_cache: join(root, 'trees'), plugins, ...extra }),
  );
  return {
    root,
    config,
    dirs,
    /** Entries left in imgdir and tmpdir: temp files of builds. */
    leftovers: () => [...readdirSync(dirs.imgdir), ...readdirSync(dirs.tmpdir)],
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** Starts `imagefactoryd` as a user would, on a free loopback port, and waits until it listens. */
export function startDaemon(config: string, ...flags: string[]): Promise<Daemon> {
  return spawnDaemon([], ['--no_ssl', '--no_oauth', '--address', '127.0.0.1', '--config', config, ...flags]);
}

/** `imagefactoryd --foreground --port 0` with these Node options and daemon flags; resolves with its URL once it listens. */
export function spawnDaemon(nodeArgs: string[], flags: string[]): Promise<Daemon> {
  const proc = spawn(process.execPath, [...nodeArgs, DAEMON_BIN, '--foreground', '--port', '0', ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<DaemonExit>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start:\n${out}${err}`)), 20_000);
    const onData = () => {
      const m = /listening on (https?:\/\/\S+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      proc.stdout!.off('data', onData);
      resolve({
        url: m[1]!,
        proc,
        output: () => out + err,
        stderr: () => err,
        exited,
        async stop(signal: NodeJS.Signals = 'SIGTERM') {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
          return exited;
        },
      });
    };
    proc.stdout!.on('data', onData);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited with ${code}:\n${out}${err}`));
    });
  });
}
