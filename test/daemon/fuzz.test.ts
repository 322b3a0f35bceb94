/**
 * A bounded fuzz run against a live daemon with its defaults (HTTPS, OAuth):
 * hundreds of malformed requests from a seeded generator — most of them
 * properly signed, so that the junk reaches the routes behind the front door —
 * plus malformed HTTP on raw TLS sockets. Every answer must be below 500, the
 * daemon must stay up and answer, its log must hold no internal error, and its
 * memory must stay flat: its JS heap after a full GC (read through the V8
 * inspector) barely moves from the warm-up to the end, and its resident size
 * stays within a bound.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../src/api/auth/sign.js';
import { parseFormPairs } from '../../src/api/auth/signature-base.js';
import { fuzzRequests } from './fuzz-requests.js';
import { CONSUMER, heapAfterGc, request, secureHome, startLiveWithNode, type LiveDaemon } from './live.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20_241_114);
/** Requests before memory is first measured: V8 grows its heap to a working size first. */
const WARM_UP = 600;
/** The measured run, in rounds; memory is read after each. */
const ROUNDS = 3;
const RUN = Number(process.env.FUZZ_REQUESTS ?? 900);
/** Growth of the JS heap (after a full GC) allowed from the warm-up to the end: a leak of a few hundred bytes a request shows. */
const HEAP_FLAT_MIB = 4;
/** The resident set also holds the allocator's arenas (TLS handshakes, 2 MiB bodies); it settles, but less tidily. */
const RSS_FLAT_MIB = 64;

let home: ReturnType<typeof secureHome>;
let daemon: LiveDaemon;

beforeAll(async () => {
  // A deep queue: submissions that happen to be valid must not meet a legitimate 503 queue_full.
  home = secureHome({ max_queued_builds: 10_000, max_concurrent_local_sessions: 4 });
  // The V8 inspector on loopback, to read the heap after a full GC (test-only: the daemon runs as shipped otherwise).
  daemon = await startLiveWithNode(['--inspect=127.0.0.1:0'], home.config);
});

afterAll(async () => {
  const stopped = await daemon?.stop();
  expect(stopped?.code).toBe(0);
  home?.remove();
});

function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  return kb / 1024;
}

const ids: string[] = [];

/** Sends one fuzz request; the status, or the socket error if the server closed on it (a 413 mid-upload does that). */
async function send(r: ReturnType<typeof fuzzRequests>[number]): Promise<{ status: number | null; error?: string }> {
  const url = `${daemon.url}${r.path}`;
  const headers = { ...r.headers };
  if (r.sign) {
    let form: [string, string][] | undefined;
    try {
      form = headers['content-type'] === 'application/x-www-form-urlencoded' && r.body ? (parseFormPairs(r.body.toString('latin1')) as [string, string][]) : undefined;
    } catch {
      form = undefined;
    }
    try {
      headers.authorization = signRequest({ method: r.method, url, consumer: CONSUMER, ...(form ? { form } : {}) }).header;
    } catch {
      // A path no URL parser takes: sent unsigned.
    }
  }
  try {
    const answer = await request(url, { method: r.method, headers, ...(r.body ? { body: r.body } : {}), timeoutMs: 10_000 });
    if (answer.status === 202) {
      try {
        const body = answer.json();
        const image = body.base_image ?? body.target_image ?? body.provider_image;
        if (image?.id) ids.push(image.id);
      } catch {
        // not an image
      }
    }
    return { status: answer.status };
  } catch (e) {
    return { status: null, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
  }
}

/** Malformed HTTP straight onto a TLS socket: what the server answers (its first line), if anything. */
function raw(bytes: string | Buffer): Promise<string> {
  const { port } = new URL(daemon.url);
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: Number(port), rejectUnauthorized: false }, () => socket.end(bytes));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('close', () => resolve(text.split('\r\n')[0] ?? ''));
    socket.on('error', () => resolve(text.split('\r\n')[0] ?? ''));
    socket.setTimeout(5000, () => socket.destroy());
  });
}

describe(`a fuzz run of ${RUN} hostile requests (seed ${SEED}) against a live HTTPS + OAuth daemon`, () => {
  it('answers every one below 500, stays up, logs no internal error, and keeps its memory flat', async () => {
    const all = fuzzRequests(SEED, WARM_UP + RUN, () => ids);
    const statuses = new Map<string, number>();
    const fives: string[] = [];
    const socketErrors: string[] = [];
    const tally = (r: (typeof all)[number], res: { status: number | null; error?: string }) => {
      const key = res.status === null ? `socket:${res.error}` : String(res.status);
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      if (res.status !== null && res.status >= 500) fives.push(`${res.status} ${r.method} ${r.path.slice(0, 120)}`);
      if (res.status === null) socketErrors.push(`${res.error} ${r.method} ${r.path.slice(0, 80)} (${r.body?.length ?? 0} bytes)`);
    };
    // Four at a time, as a busy client would.
    const run = async (batch: typeof all) => {
      for (let i = 0; i < batch.length; i += 4) {
        const chunk = batch.slice(i, i + 4);
        const results = await Promise.all(chunk.map(send));
        chunk.forEach((r, j) => tally(r, results[j]!));
      }
    };
    await run(all.slice(0, WARM_UP));
    const rss = [rssMiB(daemon.proc.pid!)];
    const heap = [(await heapAfterGc(daemon)) / 2 ** 20];
    const started = Date.now();
    const per = Math.ceil(RUN / ROUNDS);
    for (let round = 0; round < ROUNDS; round++) {
      await run(all.slice(WARM_UP + round * per, WARM_UP + (round + 1) * per));
      rss.push(rssMiB(daemon.proc.pid!));
      heap.push((await heapAfterGc(daemon)) / 2 ** 20);
    }
    const seconds = (Date.now() - started) / 1000;
    const rawAnswers = await Promise.all([
      raw('GARBAGE\r\n\r\n'),
      raw('GET / HTTP/1.1\r\nHost: x\r\nX: \u0000\r\n\r\n'),
      raw(`GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`),
      raw(`GET /imagefactory HTTP/1.1\r\n${'X-A: b\r\n'.repeat(3000)}\r\n`),
      raw('POST /imagefactory/base_images HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n'),
      raw('POST /imagefactory/base_images HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nzz\r\n'),
      raw(Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 0, 1, 2, 3])),
    ]);

    const summary = [...statuses.entries()].sort().map(([k, v]) => `${k}:${v}`).join(' ');
    console.info(`fuzz: ${WARM_UP} + ${RUN} requests (${RUN} in ${seconds.toFixed(1)} s); statuses ${summary}; after warm-up and each round, heap after GC (MiB): ${heap.map((m) => m.toFixed(1)).join(', ')}, RSS (MiB): ${rss.map((m) => m.toFixed(1)).join(', ')}; raw: ${rawAnswers.join(' | ')}`);

    expect(fives, summary).toEqual([]);
    // The server may close on a body it refuses (413 mid-upload): that is the only socket error allowed.
    expect(socketErrors.filter((e) => !/^(ECONNRESET|EPIPE) /.test(e) || !/\((\d{6,}) bytes\)$/.test(e))).toEqual([]);
    for (const line of rawAnswers) expect(line === '' || /^HTTP\/1\.1 4\d\d /.test(line), line).toBe(true);
    expect(daemon.proc.exitCode).toBeNull();
    expect((await request(`${daemon.url}/imagefactory`)).status).toBe(200);
    const list = `${daemon.url}/imagefactory/base_images`;
    expect((await request(list, { headers: { authorization: signRequest({ method: 'GET', url: list, consumer: CONSUMER }).header } })).status).toBe(200);
    expect(daemon.logs().filter((l) => l.level >= 50)).toEqual([]);
    expect(heap[ROUNDS]! - heap[0]!, `heap ${heap.join(', ')}`).toBeLessThan(HEAP_FLAT_MIB);
    expect(rss[ROUNDS]! - rss[0]!, `RSS ${rss.join(', ')}`).toBeLessThan(RSS_FLAT_MIB);
  }, 600_000);
});
