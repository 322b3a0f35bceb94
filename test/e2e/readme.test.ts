import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleOf, watchOutput } from '../../bench/serial-console.js';
import { processesOfBuild } from '../../src/engine/reaper.js';
import { PROJECT_ROOT } from '../../src/version.js';
import { strayMmdebstrapTemps } from './faults-helpers.js';

/**
 * The README's first command, run exactly as the README writes it, from the
 * project root, on the embedded defaults (its default data directory and
 * package cache): what a new user runs first. The machine's own state in
 * those directories is put aside before and restored after.
 */

const README = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
const quickStart = README.slice(README.indexOf('## Quick start'));
const commands = /```sh\n([\s\S]*?)```/.exec(quickStart)![1]!.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
const MAIN_JOB = commands[0]!;
const ROOTPW = /<rootpw>([^<]+)<\/rootpw>/.exec(readFileSync(join(PROJECT_ROOT, 'examples/debian-12.tdl'), 'utf8'))![1]!;

const DATA = '/var/lib/imagefactory/local';
const PACKAGES = '/var/cache/imagefactory/packages';
const TREES = '/var/cache/imagefactory/trees';
const TREES_ASIDE = `${TREES}.before-readme-test-${process.pid}`;
const ASIDE = `${DATA}.before-readme-test-${process.pid}`;
let packagesBefore: Set<string> | null = null;

const BUILD_MS = 20 * 60_000;

interface Run {
  code: Promise<number | null>;
  out: () => string;
  pid: number;
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
}

/** Runs a shell command line as a terminal would: in its own process group, so Ctrl-C can reach all of it. */
function shell(line: string): Run {
  const proc = spawn('bash', ['-c', line], { cwd: PROJECT_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const watched = watchOutput(proc, 'the command');
  return {
    code: new Promise<number | null>((resolve) => proc.on('close', (c) => resolve(c))),
    out: () => watched.output(),
    pid: proc.pid!,
    waitFor: (pattern, timeoutMs) => watched.waitFor(pattern, timeoutMs, 0),
  };
}

function qemuProcessesNamed(fragment: string): string[] {
  const r = spawnSync('pgrep', ['-af', 'qemu-system'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.includes(fragment));
}

describe('the README, as a new user runs it', () => {
  beforeAll(() => {
    if (existsSync(DATA)) renameSync(DATA, ASIDE);
    // A new user's first build has no bootstrapped tree to start from.
    if (existsSync(TREES)) renameSync(TREES, TREES_ASIDE);
    packagesBefore = existsSync(PACKAGES) ? new Set(readdirSync(PACKAGES)) : null;
  });

  afterAll(() => {
    rmSync(DATA, { recursive: true, force: true });
    if (existsSync(ASIDE)) renameSync(ASIDE, DATA);
    rmSync(TREES, { recursive: true, force: true });
    if (existsSync(TREES_ASIDE)) renameSync(TREES_ASIDE, TREES);
    if (packagesBefore === null) rmSync(PACKAGES, { recursive: true, force: true });
    else for (const f of readdirSync(PACKAGES)) if (!packagesBefore.has(f)) rmSync(join(PACKAGES, f), { force: true });
  });

  it('starts with the command that sets everything up and builds examples/debian-12.tdl', () => {
    expect(MAIN_JOB).toBe('bash .ci/setup && npx imagefactory build examples/debian-12.tdl');
  });

  it(
    'ends COMPLETE with exit status 0, and the printed qemu command boots the image by its own bootloader to a login prompt',
    async () => {
      const run = shell(MAIN_JOB);
      const code = await run.code;
      const out = run.out();
      expect(code, out.slice(-3000)).toBe(0);
      const id = /^image (\S+) COMPLETE in \d+ s$/m.exec(out)?.[1];
      expect(id, out.slice(-3000)).toBeDefined();
      const body = /^ {2}body: {3}(\S+) \(qcow2, sha256 [0-9a-f]{64}\)$/m.exec(out)![1]!;
      expect(body).toBe(`${DATA}/storage/${id}.body`);
      expect(readFileSync(body).subarray(0, 4).toString('latin1')).toBe('QFI\xfb');
      expect(existsSync(`${DATA}/work/imagefactory-${id}`)).toBe(false);

      const boot = /^ {2}boot: {3}(.+)$/m.exec(out)![1]!.trim().split(/\s+/);
      expect(boot[0]).toBe('qemu-system-x86_64');
      expect(boot).toContain('-snapshot');
      const console = consoleOf(boot[0]!, boot.slice(1), `readme-${id}`);
      try {
        await console.login(ROOTPW, 240_000);
        expect(console.output()).toMatch(/Debian GNU\/Linux 12/);
        expect(await console.run('cat /etc/imagefactory-build')).toBe('built from debian-12.tdl\n');
        expect(await console.run('systemctl is-enabled nginx')).toBe('enabled\n');
      } finally {
        await console.close();
      }
      expect(qemuProcessesNamed(id!)).toEqual([]);
    },
    BUILD_MS,
  );

  it(
    'rebuilds the same template from the cache in seconds: the same body, hard-linked',
    async () => {
      const run = shell(MAIN_JOB);
      const started = Date.now();
      expect(await run.code, run.out().slice(-3000)).toBe(0);
      const out = run.out();
      expect(out).toMatch(/^image \S+ COMPLETE in [0-2] s$/m);
      expect(out).toMatch(/validating[\s\S]*complete {6}100%/);
      expect(out).not.toContain('installing');
      expect(Date.now() - started).toBeLessThan(30_000);
    },
    BUILD_MS,
  );

  it(
    'cancels a second run on Ctrl-C in the middle of the bootstrap, leaving no qemu, no mmdebstrap and no work directory',
    async () => {
      // The same template again would be a cache hit, done in a second: this run starts as the first did, from nothing.
      rmSync(DATA, { recursive: true, force: true });
      rmSync(TREES, { recursive: true, force: true });
      const run = shell(MAIN_JOB);
      const id = (await run.waitFor(/^image (\S+): building/m, BUILD_MS))[1]!;
      await run.waitFor(/mmdebstrap: (extracting|installing)/, BUILD_MS);
      expect(processesOfBuild(id).length).toBeGreaterThan(0);
      // Ctrl-C on a terminal: SIGINT to the foreground process group.
      process.kill(-run.pid, 'SIGINT');
      const code = await run.code;
      const out = run.out();
      expect(out).toContain(`image ${id} CANCELLED: cancelled: the build was cancelled`);
      expect(code).not.toBe(0);
      expect(processesOfBuild(id)).toEqual([]);
      expect(qemuProcessesNamed(id)).toEqual([]);
      expect(existsSync(`${DATA}/work/imagefactory-${id}`)).toBe(false);
      expect(existsSync(`${DATA}/storage/${id}.body`)).toBe(false);
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(DATA);
      expect(strayMmdebstrapTemps()).toEqual([]);
    },
    BUILD_MS,
  );
});
