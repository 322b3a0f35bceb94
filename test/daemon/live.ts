/**
 * Live daemons as an operator runs them: HTTPS and OAuth by default, the
 * built `imagefactoryd` in its own process, its JSON log lines parsed, and
 * a small HTTPS client that trusts exactly the daemon's certificate.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import OAuth from 'oauth-1.0a';
import { PROJECT_ROOT } from '../../src/version.js';
import { daemonHome as home, spawnDaemon, type Daemon } from '../../bench/daemon-process.js';
import { TEST_PLUGINS } from './helpers.js';

export { DAEMON_BIN } from '../../bench/daemon-process.js';
export const CLIENT_BIN = join(PROJECT_ROOT, 'dist', 'src', 'cli', 'imagefactory.js');

export const CONSUMER = { key: 'build-bot', secret: 'pX7-consumer-secret-never-logged' };
export const OTHER = { key: 'ops', secret: 'ops-secret-also-never-logged' };

/** A scratch area whose configuration has the test plugins and two OAuth consumers. */
export const secureHome = (extra: Record<string, unknown> = {}) => home(TEST_PLUGINS, { clients: { [CONSUMER.key]: CONSUMER.secret, [OTHER.key]: OTHER.secret }, ...extra });

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export interface LiveDaemon extends Daemon {
  /** The JSON log lines on stderr. */
  logs(): LogLine[];
}

/** Parses JSON log lines out of text (other lines are skipped). */
export function parseLogLines(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as LogLine];
      } catch {
        return [];
      }
    });
}

/** Starts `imagefactoryd --foreground` with no TLS or OAuth flag unless given, on a free loopback port, and waits until it listens. */
export function startLive(config: string, ...flags: string[]): Promise<LiveDaemon> {
  return startLiveWithNode([], config, ...flags);
}

/** The same, with options for Node itself (e.g. `--inspect=127.0.0.1:0` to measure the heap). */
export async function startLiveWithNode(nodeArgs: string[], config: string, ...flags: string[]): Promise<LiveDaemon> {
  const daemon = await spawnDaemon(nodeArgs, ['--config', config, ...flags]);
  return { ...daemon, logs: () => parseLogLines(daemon.stderr()) };
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json(): any;
  /** The certificate the server presented (https). */
  fingerprint256?: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** PEM to trust; without it any certificate is accepted (the tests compare fingerprints themselves). */
  ca?: string;
  timeoutMs?: number;
}

/** One request over http or https, without keep-alive; resolves with whatever the server answered. */
export function request(url: string, opts: RequestOptions = {}): Promise<Answer> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  const send = secure ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = send(
      u,
      {
        method: opts.method ?? 'GET',
        headers: { ...(opts.body !== undefined ? { 'content-length': String(Buffer.byteLength(opts.body)) } : {}), ...opts.headers },
        agent: false,
        ...(secure ? (opts.ca ? { ca: opts.ca, checkServerIdentity: () => undefined } : { rejectUnauthorized: false }) : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const cert = secure ? (res.socket as import('node:tls').TLSSocket).getPeerCertificate?.() : undefined;
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text), ...(cert?.fingerprint256 ? { fingerprint256: cert.fingerprint256 } : {}) });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 15_000, () => req.destroy(new Error(`no answer from ${opts.method ?? 'GET'} ${url}`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** An independent OAuth 1.0a signer (the `oauth-1.0a` package), as a third-party client would use it. */
export function independentSigner(consumer: { key: string; secret: string }, method: 'HMAC-SHA1' | 'HMAC-SHA256' = 'HMAC-SHA1') {
  const algorithm = method === 'HMAC-SHA256' ? 'sha256' : 'sha1';
  return new OAuth({
    consumer,
    signature_method: method,
    hash_function: (base, key) => createHmac(algorithm, key).update(base).digest('base64'),
  });
}

/** `Authorization` header of the independent signer for a request. */
export function independentHeader(consumer: { key: string; secret: string }, method: string, url: string, data?: Record<string, string>, signatureMethod: 'HMAC-SHA1' | 'HMAC-SHA256' = 'HMAC-SHA1'): string {
  const oauth = independentSigner(consumer, signatureMethod);
  return oauth.toHeader(oauth.authorize({ url, method, ...(data ? { data } : {}) })).Authorization;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` is true. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export interface ClientRun {
  code: number | null;
  out: string;
  err: string;
}

/** Runs the built `imagefactory` client with only the given IMAGEFACTORY_* variables (none of the caller's), and HOME in `home` so no user configuration is read. */
export function runClient(args: string[], env: Record<string, string> = {}, home?: string): Promise<ClientRun> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('IMAGEFACTORY')));
  const child = spawn(process.execPath, [CLIENT_BIN, ...args], {
    env: { ...base, ...(home ? { HOME: home, XDG_CONFIG_HOME: join(home, '.config') } : {}), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err })));
}

// Node 20 has no WebSocket client; @statelyai/inspect ships `ws`.
const { WebSocket } = createRequire(createRequire(import.meta.url).resolve('@statelyai/inspect'))('ws') as {
  WebSocket: new (url: string) => { on(event: string, fn: (...args: any[]) => void): void; send(text: string): void; close(): void };
};

/**
 * The daemon's JS heap in use right after a full garbage collection, in bytes,
 * through the V8 inspector of a daemon started with `--inspect=127.0.0.1:0`.
 */
export function heapAfterGc(daemon: LiveDaemon): Promise<number> {
  const url = /Debugger listening on (ws:\/\/\S+)/.exec(daemon.output())?.[1];
  if (!url) throw new Error('the daemon was not started with --inspect');
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    let id = 0;
    const pending = new Map<number, (result: any) => void>();
    const call = (method: string) =>
      new Promise<any>((done) => {
        pending.set(++id, done);
        socket.send(JSON.stringify({ id, method }));
      });
    socket.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { id?: number; result?: unknown };
      if (message.id !== undefined) pending.get(message.id)?.(message.result);
    });
    socket.on('error', reject);
    socket.on('open', async () => {
      await call('HeapProfiler.collectGarbage');
      await call('HeapProfiler.collectGarbage');
      const usage = (await call('Runtime.getHeapUsage')) as { usedSize: number };
      socket.close();
      resolve(usage.usedSize);
    });
  });
}
