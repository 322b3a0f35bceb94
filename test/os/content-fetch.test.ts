import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONTENT_FETCH, fetchContentUrl, isHostOnlyAddress, type ContentFetchOptions } from '../../src/os/content-fetch.js';

/** Template url contents are fetched on the build host within limits: each way out of them fails with its own code. */

let server: Server;
let base: string;
let hits = 0;
const anyAddress: ContentFetchOptions = { ...DEFAULT_CONTENT_FETCH, addressAllowed: () => true, maxBytes: 1024, timeoutMs: 1500, maxRedirects: 2 };

beforeAll(async () => {
  server = createServer((req, res) => {
    hits++;
    const path = req.url ?? '/';
    if (path === '/small') return void res.end('hello');
    if (path === '/declared-big') {
      res.writeHead(200, { 'content-length': String(10 * 1024 * 1024) });
      return void res.write('x');
    }
    if (path === '/chunked-big') {
      res.writeHead(200);
      const timer = setInterval(() => res.write(Buffer.alloc(512, 'y')), 5);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (path === '/hang') return; // never answers
    if (path === '/slow-body') {
      res.writeHead(200, { 'content-length': '100' });
      return void res.write('partial');
    }
    const hop = /^\/redirect\/(\d+)$/.exec(path);
    if (hop) {
      const n = Number(hop[1]);
      res.writeHead(302, { location: n > 0 ? `/redirect/${n - 1}` : '/small' });
      return void res.end();
    }
    if (path === '/to-file') {
      res.writeHead(301, { location: 'file:///etc/shadow' });
      return void res.end();
    }
    if (path === '/auth') return void res.end(req.headers.authorization ?? 'none');
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code ?? String(e));

describe('http and https contents', () => {
  it('fetches a small answer', async () => {
    expect((await fetchContentUrl(`${base}/small`, anyAddress)).toString()).toBe('hello');
  });

  it('refuses a body larger than the cap, declared or not', async () => {
    expect(await codeOf(fetchContentUrl(`${base}/declared-big`, anyAddress))).toBe('content_too_large');
    expect(await codeOf(fetchContentUrl(`${base}/chunked-big`, anyAddress))).toBe('content_too_large');
  });

  it('gives up at the time limit, for a server that never answers or never finishes', async () => {
    const started = Date.now();
    expect(await codeOf(fetchContentUrl(`${base}/hang`, anyAddress))).toBe('content_timeout');
    expect(await codeOf(fetchContentUrl(`${base}/slow-body`, anyAddress))).toBe('content_timeout');
    expect(Date.now() - started).toBeLessThan(6000);
  });

  it('follows up to the configured number of redirects, and no more', async () => {
    expect((await fetchContentUrl(`${base}/redirect/1`, anyAddress)).toString()).toBe('hello');
    const e = await fetchContentUrl(`${base}/redirect/5`, anyAddress).catch((x: unknown) => x as { code: string; message: string });
    expect(e).toMatchObject({ code: 'content_redirects' });
  });

  it('never follows a redirect to file: (or any scheme but http and https)', async () => {
    expect(await codeOf(fetchContentUrl(`${base}/to-file`, anyAddress))).toBe('content_scheme_refused');
    expect(await codeOf(fetchContentUrl('ftp://example.com/x', anyAddress))).toBe('content_scheme_refused');
    expect(await codeOf(fetchContentUrl('gopher://example.com/x', anyAddress))).toBe('content_scheme_refused');
  });

  it('reports an error status with its code', async () => {
    expect(await codeOf(fetchContentUrl(`${base}/missing`, anyAddress))).toBe('content_unavailable');
  });

  it('sends URL credentials as Basic auth and never shows them in an error', async () => {
    const url = `${base.replace('http://', 'http://user:s3cr3t-pw@')}/auth`;
    expect((await fetchContentUrl(url, anyAddress)).toString()).toBe(`Basic ${Buffer.from('user:s3cr3t-pw').toString('base64')}`);
    const e = (await fetchContentUrl(url.replace('/auth', '/missing'), anyAddress).catch((x: unknown) => x)) as Error & { details: unknown };
    expect(`${e.message} ${JSON.stringify(e.details)}`).not.toContain('s3cr3t-pw');
  });
});

describe('addresses of the build host itself', () => {
  it('refuses loopback and link-local addresses by default, before connecting', async () => {
    const before = hits;
    const opts = { ...DEFAULT_CONTENT_FETCH, timeoutMs: 3000 };
    expect(await codeOf(fetchContentUrl(`${base}/small`, opts))).toBe('content_address_refused');
    expect(await codeOf(fetchContentUrl(`${base.replace('127.0.0.1', 'localhost')}/small`, opts))).toBe('content_address_refused');
    expect(await codeOf(fetchContentUrl('http://169.254.169.254/latest/meta-data/', opts))).toBe('content_address_refused');
    expect(await codeOf(fetchContentUrl('http://[::1]:1/x', opts))).toBe('content_address_refused');
    expect(hits).toBe(before);
  });

  it('knows which addresses are the host own', () => {
    for (const a of ['127.0.0.1', '127.9.9.9', '0.0.0.0', '169.254.169.254', '::1', '::', 'fe80::1', '::ffff:127.0.0.1']) expect(isHostOnlyAddress(a), a).toBe(true);
    for (const a of ['192.0.2.2', '10.0.0.1', '151.101.2.132', '2001:db8::1']) expect(isHostOnlyAddress(a), a).toBe(false);
  });
});

describe('file: contents', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync('/var/tmp/h11-fetch-');
    mkdirSync(join(dir, 'allowed'));
    writeFileSync(join(dir, 'allowed', 'motd'), 'welcome');
    writeFileSync(join(dir, 'outside'), 'secret');
    symlinkSync(join(dir, 'outside'), join(dir, 'allowed', 'link-out'));
    symlinkSync('/etc/shadow', join(dir, 'allowed', 'shadow'));
    mkdirSync(join(dir, 'allowed', 'fifo-dir'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file inside an allowed directory', async () => {
    const opts = { ...DEFAULT_CONTENT_FETCH, fileUrlDirs: [join(dir, 'allowed')] };
    expect((await fetchContentUrl(`file://${dir}/allowed/motd`, opts)).toString()).toBe('welcome');
  });

  it('refuses files outside it, by name or through a symlink, and everything when nothing is allowed', async () => {
    const opts = { ...DEFAULT_CONTENT_FETCH, fileUrlDirs: [join(dir, 'allowed')] };
    expect(await codeOf(fetchContentUrl(`file://${dir}/outside`, opts))).toBe('file_url_forbidden');
    expect(await codeOf(fetchContentUrl(`file://${dir}/allowed/link-out`, opts))).toBe('file_url_forbidden');
    expect(await codeOf(fetchContentUrl(`file://${dir}/allowed/shadow`, opts))).toBe('file_url_forbidden');
    expect(await codeOf(fetchContentUrl(`file://${dir}/allowed/../outside`, opts))).toBe('file_url_forbidden');
    expect(await codeOf(fetchContentUrl('file:///etc/shadow', DEFAULT_CONTENT_FETCH))).toBe('file_url_forbidden');
    expect(await codeOf(fetchContentUrl(`file://${dir}/allowed/fifo-dir`, opts))).toBe('content_unavailable');
  });
});
