/**
 * The daemon as an operator runs it without --foreground: it detaches, writes
 * its pid file, logs JSON lines to its log file (reopened on SIGHUP), refuses
 * a second start on the same pid file, serves metrics, and on SIGTERM stops
 * within its bound — with a real guest running: the busybox test guest
 * installed through the installer strategy (TestInstaller), on the qemu
 * driver. `shutdown: checkpoint` resumes the build at the next start;
 * `shutdown: cancel` ends it CANCELLED; either way no VM is left.
 */
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../src/api/auth/sign.js';
import { isDaemonAlive, readPidFile } from '../../src/daemon/pidfile.js';
import { processesOfBuild } from '../../src/engine/reaper.js';
import { listQemuProcesses } from '../../src/hypervisor/processes.js';
import { Catalog } from '../../src/store/index.js';
import { VERSION } from '../../src/version.js';
import { buildTestGuest, removeTestGuest } from '../guest/build-guest.js';
import { describeWithTools, tool } from '../tools.js';
import { template } from './helpers.js';
import { CONSUMER, DAEMON_BIN, parseLogLines, request, secureHome, sleep, waitUntil, type Answer } from './live.js';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

interface Detached {
  url: string;
  pid: number;
  pidFile: string;
  logFile: string;
  logs(): ReturnType<typeof parseLogLines>;
  /** Sends SIGTERM and waits until the process is gone; the milliseconds it took. */
  terminate(): Promise<number>;
}

/** Runs `imagefactoryd` without --foreground: the command's own exit code and output. */
function startCommand(config: string, ...flags: string[]): Promise<{ code: number | null; out: string; err: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [DAEMON_BIN, '--port', '0', '--config', config, ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err, ms: Date.now() - started })));
}

async function waitGone(pid: number, timeoutMs: number): Promise<void> {
  await waitUntil(`pid ${pid} to exit`, () => !isDaemonAlive(pid), timeoutMs);
}

/** Starts a detached daemon with its pid and log files in `root`; it is stopped after the test if it still runs. */
async function detached(config: string, root: string, flags: string[] = [], pidFile = join(root, 'run', 'imagefactoryd.pid')): Promise<Detached> {
  const logFile = join(root, 'log', 'imagefactoryd.log');
  const r = await startCommand(config, '--pid_file', pidFile, '--log_file', logFile, ...flags);
  const m = /^imagefactoryd \S+ listening on (https?:\/\/\S+) \(pid (\d+); pid file (\S+); log (\S+)\)\n$/.exec(r.out);
  const pid = Number(m?.[2] ?? readPidFile(pidFile) ?? 0);
  // Stopped after the test whatever the assertions below say.
  cleanups.push(async () => {
    if (isDaemonAlive(pid)) {
      process.kill(pid, 'SIGTERM');
      await waitGone(pid, 60_000).catch(() => process.kill(pid, 'SIGKILL'));
    }
  });
  expect(r.code, r.err).toBe(0);
  expect(m, r.out).not.toBeNull();
  expect([m![3], m![4]]).toEqual([pidFile, logFile]);
  return {
    url: m![1]!,
    pid,
    pidFile,
    logFile,
    logs: () => parseLogLines(existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    async terminate() {
      const at = Date.now();
      process.kill(pid, 'SIGTERM');
      await waitGone(pid, 90_000);
      return Date.now() - at;
    },
  };
}

function signedGet(url: string): Promise<Answer> {
  return request(url, { headers: { authorization: signRequest({ method: 'GET', url, consumer: CONSUMER }).header } });
}

async function submit(base: string, tdl: string, parameters: Record<string, unknown> = {}): Promise<string> {
  const url = `${base}/imagefactory/base_images`;
  const r = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: signRequest({ method: 'POST', url, consumer: CONSUMER }).header },
    body: JSON.stringify({ base_image: { template: tdl, parameters } }),
  });
  expect(r.status, r.text).toBe(202);
  return r.json().base_image.id as string;
}

async function waitStatus(base: string, id: string, statuses: string[], timeoutMs: number): Promise<Record<string, any>> {
  let image: Record<string, any> = {};
  await waitUntil(
    `image ${id} to be ${statuses.join('|')}`,
    async () => {
      image = (await signedGet(`${base}/imagefactory/base_images/${id}`)).json().base_image;
      return statuses.includes(image.status);
    },
    timeoutMs,
  );
  return image;
}

/** /proc/PID/stat: parent pid and session id. */
function procStat(pid: number): { ppid: number; sid: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(fields[1]), sid: Number(fields[3]) };
}

describe('daemon mode (no --foreground)', () => {
  it('detaches once it listens, writes its pid file, refuses a second start on it, logs JSON lines with request and image ids, reopens its log on SIGHUP, and stops on SIGTERM', async () => {
    const home = secureHome();
    cleanups.push(() => home.remove());
    const d = await detached(home.config, home.root, ['--verbose']);
    expect(d.url).toMatch(/^https:\/\//);
    expect(readPidFile(d.pidFile)).toBe(d.pid);
    // Its own session, not a child of the command that started it (which has exited).
    const stat = procStat(d.pid);
    expect(stat.sid).toBe(d.pid);
    expect(stat.ppid).not.toBe(process.pid);
    expect(statSync(d.logFile).mode & 0o777).toBe(0o640);

    const again = await startCommand(home.config, '--pid_file', d.pidFile, '--log_file', d.logFile);
    expect(again.code).toBe(2);
    expect(again.err).toBe(`imagefactoryd: imagefactoryd is already running with pid ${d.pid} (pid file ${d.pidFile}); stop it first (kill ${d.pid}) or choose another pid_file\n`);
    expect(again.out).toBe('');

    // A request id per request, the same in the answer and the log line.
    const answer = await signedGet(`${d.url}/imagefactory/plugins`);
    expect(answer.status).toBe(200);
    const reqId = answer.headers['x-request-id'];
    await waitUntil('the request line', () => d.logs().some((l) => l.reqId === reqId));
    expect(d.logs().find((l) => l.reqId === reqId)).toMatchObject({ msg: 'request', method: 'GET', path: '/imagefactory/plugins', status: 200, consumer: CONSUMER.key });

    // The image id on every line of a build.
    const id = await submit(d.url, template('ok'));
    await waitStatus(d.url, id, ['COMPLETE'], 30_000);
    await waitUntil('the build lines', () => d.logs().some((l) => l.imageId === id && l.status === 'COMPLETE'));
    const buildLines = d.logs().filter((l) => l.imageId === id);
    expect(buildLines.map((l) => l.to).filter(Boolean)).toEqual(['queued', 'validating', 'preparing', 'installing', 'customizing', 'snapshotting', 'complete']);

    // Log rotation: move the file away, SIGHUP, and the daemon writes a new one.
    const rotated = `${d.logFile}.1`;
    renameSync(d.logFile, rotated);
    process.kill(d.pid, 'SIGHUP');
    await waitUntil('a new log file', () => existsSync(d.logFile));
    expect(d.logs()[0]).toMatchObject({ msg: 'SIGHUP: log file reopened' });
    expect(isDaemonAlive(d.pid)).toBe(true);
    expect((await signedGet(`${d.url}/imagefactory/base_images`)).status).toBe(200);

    const ms = await d.terminate();
    expect(ms).toBeLessThan(10_000);
    expect(existsSync(d.pidFile)).toBe(false);
    expect(d.logs().at(-1)).toMatchObject({ msg: 'stopped; exit code 0', exitCode: 0 });
    expect(parseLogLines(readFileSync(rotated, 'utf8')).some((l) => l.msg === `imagefactoryd ${VERSION} serving the REST API at ${d.url}`)).toBe(true);
    expect(existsSync(join(home.dirs.storage, 'tls', 'transient-key.pem'))).toBe(false);
  });

  it('replaces a stale pid file, and a failed start is reported by the command with the daemon’s reason', async () => {
    const home = secureHome();
    cleanups.push(() => home.remove());
    const pidFile = join(home.root, 'run', 'stale.pid');
    // The pid of a process that has exited.
    const gone = spawn('true');
    await new Promise((r) => gone.on('exit', r));
    mkdirSync(join(home.root, 'run'), { recursive: true });
    writeFileSync(pidFile, `${gone.pid}\n`);
    const d = await detached(home.config, home.root, [], pidFile);
    expect(readPidFile(pidFile)).toBe(d.pid);
    await d.terminate();
    expect(existsSync(pidFile)).toBe(false);

    const failed = await startCommand(home.config, '--pid_file', pidFile, '--log_file', join(home.root, 'log', 'fail.log'), '--ssl_pem', join(home.root, 'absent.pem'));
    expect(failed.code).toBe(2);
    expect(failed.err).toMatch(/^imagefactoryd: cannot read the TLS PEM file .*absent\.pem \(--ssl_pem\): it does not exist\n$/);
    expect(existsSync(pidFile)).toBe(false);
    expect(parseLogLines(readFileSync(join(home.root, 'log', 'fail.log'), 'utf8')).at(-1)).toMatchObject({ level: 50, exitCode: 2 });
  });

  it('serves GET /metrics behind OAuth, and on the metrics_port without OAuth to loopback only', async () => {
    const home = secureHome({ metrics_port: 0 });
    cleanups.push(() => home.remove());
    const d = await detached(home.config, home.root);
    const id = await submit(d.url, template('ok'));
    await waitStatus(d.url, id, ['COMPLETE'], 30_000);
    expect((await request(`${d.url}/metrics`)).status).toBe(401);
    const behind = await signedGet(`${d.url}/metrics`);
    expect(behind.status).toBe(200);
    expect(behind.text).toContain('imagefactory_builds_finished_total{kind="base",status="COMPLETE",error_code=""} 1');
    expect(behind.text).toMatch(/imagefactory_phase_duration_seconds_count\{kind="base",phase="installing"\} 1/);
    expect(behind.text).toContain('process_resident_memory_bytes');
    const metricsUrl = d.logs().find((l) => typeof l.metricsUrl === 'string')!.metricsUrl as string;
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const open = await request(metricsUrl);
    expect(open.status).toBe(200);
    expect(open.text).toContain('imagefactory_builds_submitted_total{kind="base"} 1');
    expect((await request(metricsUrl.replace('/metrics', '/imagefactory/base_images'))).status).toBe(404);
    // Bound to 127.0.0.1 only: another address of this host does not answer.
    const port = Number(new URL(metricsUrl).port);
    const refused = await new Promise<string>((resolve) => {
      const s = connect({ host: '192.0.2.2', port }, () => {
        s.destroy();
        resolve('connected');
      });
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    expect(refused).not.toBe('connected');
    await d.terminate();
  });
});

const NETBOOT = 'debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64';

describeWithTools(
  [tool('qemu-system-x86_64'), tool('busybox', ['true']), tool('cpio')],
  'SIGTERM while a guest installs (qemu driver, busybox test guest)',
  () => {
    let mirror: Server;
    let mirrorUrl: string;

    beforeAll(async () => {
      const guest = await buildTestGuest();
      const files: Record<string, string> = { [`/${NETBOOT}/linux`]: guest.kernel, [`/${NETBOOT}/initrd.gz`]: guest.initrd };
      mirror = createServer((req, res) => {
        const f = files[new URL(req.url ?? '/', 'http://x').pathname];
        if (!f) return void res.writeHead(404).end();
        res.writeHead(200, { 'content-length': statSync(f).size });
        if (req.method === 'HEAD') return void res.end();
        createReadStream(f).pipe(res);
      });
      await new Promise<void>((r) => mirror.listen(0, '127.0.0.1', r));
      mirrorUrl = `http://127.0.0.1:${(mirror.address() as { port: number }).port}/debian/`;
    });

    afterAll(async () => {
      await new Promise((r) => mirror?.close(r));
      await removeTestGuest();
    });

    const installerTdl = (mode: 'ok' | 'busy') =>
      `<template><name>installer-${mode}</name><os><name>TestInstaller</name><version>${mode}</version><arch>x86_64</arch><install type="url"><url>${mirrorUrl}</url></install></os><disk><size>96MiB</size></disk></template>`;

    const guestsOf = (id: string) => listQemuProcesses().filter((p) => p.name.startsWith(`imagefactory-${id}`));

    function vmHome(shutdown: 'checkpoint' | 'cancel') {
      const home = secureHome({ hypervisor: 'qemu', accel: 'tcg', shutdown, shutdown_timeout: 30, install_stall_seconds: 60 });
      cleanups.push(() => home.remove());
      return home;
    }

    function record(home: ReturnType<typeof vmHome>, id: string) {
      const catalog = Catalog.open(join(home.dirs.storage, 'catalog.sqlite'));
      try {
        return catalog.getImage(id)!;
      } finally {
        catalog.close();
      }
    }

    it(
      'checkpoint: exits 0 within the bound, no VM left, the record kept in installing; the next start resumes the build to COMPLETE',
      async () => {
        const home = vmHome('checkpoint');
        const first = await detached(home.config, home.root);
        const id = await submit(first.url, installerTdl('ok'), { size_mb: 80 });
        await waitUntil('the installer guest to run', () => guestsOf(id).length > 0, 90_000);
        const ms = await first.terminate();
        console.info(`checkpoint: SIGTERM to exit ${ms} ms with a guest installing`);
        expect(ms).toBeLessThan(40_000);
        expect(guestsOf(id)).toEqual([]);
        expect(processesOfBuild(id)).toEqual([]);
        expect(first.logs().at(-1)).toMatchObject({ msg: 'stopped; exit code 0' });
        expect(first.logs().find((l) => l.imageId === id && String(l.msg).startsWith('shutdown: build checkpointed'))).toMatchObject({ phase: 'installing' });
        const kept = record(home, id);
        expect([kept.status, kept.phase]).toEqual(['BUILDING', 'installing']);
        const buildLog = readFileSync(join(home.dirs.storage, 'logs', `${id}.log`), 'utf8');
        expect(buildLog).toMatch(/step install: aborted/);

        const second = await detached(home.config, home.root);
        const done = await waitStatus(second.url, id, ['COMPLETE', 'FAILED', 'CANCELLED'], 150_000);
        expect([done.status, done.status_detail.error]).toEqual(['COMPLETE', null]);
        const log = (await signedGet(`${second.url}/imagefactory/base_images/${id}/log`)).text;
        expect(log).toMatch(/daemon restarted: resuming in state installing/);
        expect(guestsOf(id)).toEqual([]);
        await second.terminate();
        expect(home.leftovers()).toEqual([]);
      },
      300_000,
    );

    it(
      'cancel: the running build ends CANCELLED (undone, no VM), and the daemon exits 0 within the bound',
      async () => {
        const home = vmHome('cancel');
        const d = await detached(home.config, home.root);
        const id = await submit(d.url, installerTdl('busy'));
        await waitUntil('the installer guest to run', () => guestsOf(id).length > 0, 90_000);
        const ms = await d.terminate();
        console.info(`cancel: SIGTERM to exit ${ms} ms with a guest installing`);
        expect(ms).toBeLessThan(40_000);
        expect(guestsOf(id)).toEqual([]);
        expect(processesOfBuild(id)).toEqual([]);
        const ended = record(home, id);
        expect([ended.status, ended.phase]).toEqual(['CANCELLED', 'cancelled']);
        const lines = d.logs();
        expect(lines.find((l) => l.imageId === id && l.msg === 'shutdown: build ended CANCELLED')).toBeDefined();
        expect(lines.at(-1)).toMatchObject({ msg: 'stopped; exit code 0' });
        expect(home.leftovers()).toEqual([]);
        // Nothing to resume at the next start.
        const again = await detached(home.config, home.root);
        await sleep(500);
        expect(guestsOf(id)).toEqual([]);
        expect((await signedGet(`${again.url}/imagefactory/base_images/${id}`)).json().base_image.status).toBe('CANCELLED');
        await again.terminate();
      },
      300_000,
    );
  },
);
