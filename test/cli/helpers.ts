import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { daemonHome, startDaemon, type Daemon } from '../../bench/daemon-process.js';
import { PROJECT_ROOT } from '../../src/version.js';
import { TEST_PLUGINS, template } from '../daemon/helpers.js';

export { template };

/** The built client: these tests run it as a user would. `npm run build` (tsc) must have run. */
export const CLI = join(PROJECT_ROOT, 'dist', 'src', 'cli', 'imagefactory.js');

/** Fails early when the built client is missing or older than its sources (a stale build would test old code). */
export function requireFreshBuild(): void {
  let built: number;
  try {
    built = statSync(CLI).mtimeMs;
  } catch {
    throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.build.json\` before these tests`);
  }
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
  const cli = join(PROJECT_ROOT, 'src', 'cli');
  const sources = [join(cli, 'imagefactory.ts'), join(cli, 'validate.ts'), ...walk(join(cli, 'client')), ...walk(join(cli, 'commands'))];
  const newer = sources.filter((f) => statSync(f).mtimeMs > built);
  if (newer.length) throw new Error(`dist/ is older than ${newer.join(', ')}: run \`npx tsc -p tsconfig.build.json\``);
}

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A daemon with the TestOS plugin on a free loopback port, stopped (and its home removed) after the test. */
export async function liveDaemon(): Promise<Daemon> {
  const home = daemonHome(TEST_PLUGINS);
  cleanups.push(() => home.remove());
  const daemon = await startDaemon(home.config);
  cleanups.push(() => daemon.stop());
  return daemon;
}

/** A scratch directory removed after the test; `file(name, text)` writes into it. */
export function scratch() {
  const dir = mkdtempSync(join(tmpdir(), 'if-cli-test-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    file(name: string, text: string): string {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    },
  };
}

/** Registers cleanup work for after the test. */
export const onCleanup = (fn: () => Promise<unknown> | void) => cleanups.push(fn);

export interface CliRun {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  /** Resolves once stdout or stderr contains `text`. */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>;
}

/** Starts the client with pipes for stdout and stderr (so not a terminal), without IMAGEFACTORY_URL unless given. */
export function startCli(args: string[], env: Record<string, string> = {}): CliRun {
  const { IMAGEFACTORY_URL: _ignored, ...base } = process.env;
  const proc = spawn(process.execPath, [CLI, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  const changed = () => waiters.slice().forEach((w) => w());
  proc.stdout!.on('data', (d) => ((out += d), changed()));
  proc.stderr!.on('data', (d) => ((err += d), changed()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) =>
    proc.on('close', (code, signal) => resolve({ code, signal, out, err })),
  );
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return {
    proc,
    out: () => out,
    err: () => err,
    done,
    waitFor(text, timeoutMs = 20_000) {
      const seen = () => (typeof text === 'string' ? (out + err).includes(text) : text.test(out + err));
      return new Promise((resolve, reject) => {
        if (seen()) return resolve();
        const timer = setTimeout(() => reject(new Error(`never saw ${String(text)}; stdout:\n${out}\nstderr:\n${err}`)), timeoutMs);
        const check = () => {
          if (!seen()) return;
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(check), 1);
          resolve();
        };
        waiters.push(check);
        void done.then(() => {
          if (!seen()) {
            clearTimeout(timer);
            reject(new Error(`exited before ${String(text)}; stdout:\n${out}\nstderr:\n${err}`));
          }
        });
      });
    },
  };
}

/** Runs the client to the end. */
export function cli(args: string[], env: Record<string, string> = {}) {
  return startCli(args, env).done;
}

export async function getJson(url: string): Promise<any> {
  const res = await fetch(url);
  return res.json();
}

/** Polls an image over REST until its status is one of `statuses`. */
export async function waitStatus(url: string, collection: string, id: string, statuses: string[], timeoutMs = 20_000): Promise<Record<string, any>> {
  const singular = collection.replace(/s$/, '');
  const end = Date.now() + timeoutMs;
  for (;;) {
    const image = (await getJson(`${url}/imagefactory/${collection}/${id}`))[singular];
    if (statuses.includes(image.status)) return image;
    if (Date.now() > end) throw new Error(`image ${id} is ${image.status}, not ${statuses.join('|')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
