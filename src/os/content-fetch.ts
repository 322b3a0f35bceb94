import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { redactUrlCredentials } from '../tdl/redact.js';
import { allowedHostFile } from './allowed-host-file.js';
import { StepError } from './plugin.js';

/**
 * Fetching the `url` contents of a template's files and commands, on the
 * build host: only http and https, with a size cap, a time limit and a
 * bounded number of redirects, never to the host's loopback or a link-local
 * address (a cloud's metadata service answers there with the host's
 * credentials). `file:` URLs are read only inside the directories the
 * operator allowed (`file_url_dirs`), checked again on the real path.
 */

export interface ContentFetchOptions {
  /** The configuration's `file_url_dirs`. */
  fileUrlDirs: readonly string[];
  /** `content_fetch_max_mb`, in bytes. */
  maxBytes: number;
  /** `content_fetch_timeout_seconds`, in ms, for the whole fetch, redirects included. */
  timeoutMs: number;
  /** `content_fetch_max_redirects`. */
  maxRedirects: number;
  /** Whether an address may be connected to; loopback and link-local are refused by default. */
  addressAllowed?: (address: string) => boolean;
}

export const DEFAULT_CONTENT_FETCH: ContentFetchOptions = {
  fileUrlDirs: [],
  maxBytes: 64 * 1024 * 1024,
  timeoutMs: 60_000,
  maxRedirects: 5,
};

/** The options from the configuration's keys (file_url_dirs, content_fetch_*). */
export function contentFetchOptions(config: { file_url_dirs: string[]; content_fetch_max_mb: number; content_fetch_timeout_seconds: number; content_fetch_max_redirects: number }): ContentFetchOptions {
  return {
    fileUrlDirs: [...config.file_url_dirs],
    maxBytes: config.content_fetch_max_mb * 1024 * 1024,
    timeoutMs: config.content_fetch_timeout_seconds * 1000,
    maxRedirects: config.content_fetch_max_redirects,
  };
}

export type ContentFetchErrorCode =
  | 'content_unavailable'
  | 'content_too_large'
  | 'content_timeout'
  | 'content_redirects'
  | 'content_scheme_refused'
  | 'content_address_refused'
  | 'file_url_forbidden';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** The URL as it may appear in an error: no password. */
export function shownUrl(url: string | URL): string {
  return redactUrlCredentials(String(url));
}

const fail = (code: ContentFetchErrorCode, message: string, details: Record<string, unknown> = {}) => new StepError(code, message, details);

/** Loopback (127/8, ::1), unspecified (0.0.0.0, ::) and link-local (169.254/16, fe80::/10) addresses, IPv4-mapped ones included. */
export function isHostOnlyAddress(address: string): boolean {
  let a = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) a = mapped[1]!;
  if (isIP(a) === 4) {
    const [x, y] = a.split('.').map(Number) as [number, number];
    return x === 127 || x === 0 || (x === 169 && y === 254);
  }
  if (isIP(a) === 6) return a === '::1' || a === '::' || /^fe[89ab][0-9a-f]:/.test(a);
  return true;
}

const defaultAllowed = (address: string) => !isHostOnlyAddress(address);

/** A DNS lookup that refuses addresses the options do not allow: checked on the address actually connected to, so DNS cannot swap it afterwards. */
function guardedLookup(allowed: (address: string) => boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses as LookupAddress[];
      const ok = list.filter((a) => allowed(a.address));
      if (!ok.length) {
        const e = Object.assign(new Error(`${hostname} resolves to ${list.map((a) => a.address).join(', ')}, an address of the build host itself`), { code: 'EADDRREFUSED' });
        return callback(e, '', 0);
      }
      if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, ok);
      callback(null, ok[0]!.address, ok[0]!.family);
    });
  };
}

/** Fetches one `url` content within the limits; rejects with a StepError of a stable code. */
export async function fetchContentUrl(url: string, opts: ContentFetchOptions, signal?: AbortSignal): Promise<Buffer> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw fail('content_unavailable', `${JSON.stringify(url.slice(0, 80))} is not a URL`);
  }
  if (u.protocol === 'file:') return readAllowedFile(url, opts);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw fail('content_scheme_refused', `content ${shownUrl(u)}: only http, https and allowed file: URLs are fetched`);
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const allowed = opts.addressAllowed ?? defaultAllowed;
  try {
    for (let redirects = 0; ; redirects++) {
      const res = await get(u, both, allowed);
      if (REDIRECTS.has(res.statusCode ?? 0) && res.headers.location) {
        res.destroy();
        if (redirects >= opts.maxRedirects) throw fail('content_redirects', `content ${shownUrl(url)}: more than ${opts.maxRedirects} redirects`, { url: shownUrl(url) });
        const next = new URL(res.headers.location, u);
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          throw fail('content_scheme_refused', `content ${shownUrl(url)} redirects to ${next.protocol} (only http and https are followed)`, { url: shownUrl(url) });
        }
        u = next;
        continue;
      }
      if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) > 299) {
        res.destroy();
        throw fail('content_unavailable', `fetching ${shownUrl(url)} answered ${res.statusCode}`, { url: shownUrl(url), status: res.statusCode });
      }
      return await readBody(res, url, opts.maxBytes);
    }
  } catch (e) {
    if (e instanceof StepError) throw e;
    if (timeout.aborted) throw fail('content_timeout', `fetching ${shownUrl(url)} took longer than ${Math.round(opts.timeoutMs / 1000)} s`, { url: shownUrl(url) });
    if (signal?.aborted) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRREFUSED') throw fail('content_address_refused', `content ${shownUrl(url)}: ${err.message}`, { url: shownUrl(url) });
    throw fail('content_unavailable', `fetching ${shownUrl(url)} failed: ${err.message}`, { url: shownUrl(url) });
  }
}

function get(u: URL, signal: AbortSignal, allowed: (address: string) => boolean): Promise<IncomingMessage> {
  const host = u.hostname.replace(/^\[|\]$/g, '');
  // A literal address never goes through lookup: check it here.
  if (isIP(host) && !allowed(host)) {
    return Promise.reject(Object.assign(new Error(`${host} is an address of the build host itself`), { code: 'EADDRREFUSED' }));
  }
  const headers: Record<string, string> = { 'user-agent': 'imagefactory' };
  if (u.username || u.password) headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  const target = new URL(u);
  target.username = '';
  target.password = '';
  return new Promise((resolve, reject) => {
    const req = (u.protocol === 'https:' ? https : http).get(target, { signal, headers, lookup: guardedLookup(allowed) }, resolve);
    req.on('error', reject);
  });
}

function readBody(res: IncomingMessage, url: string, maxBytes: number): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  const tooLarge = () => fail('content_too_large', `content ${shownUrl(url)} is larger than ${maxBytes} bytes (content_fetch_max_mb)`, { url: shownUrl(url), maxBytes });
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.destroy();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        // Rejected before the destroy, which reports the cut connection at once.
        reject(tooLarge());
        res.destroy();
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('the connection was cut')));
  });
}

/** A `file:` content, read only when its real path (symlinks resolved) is inside an allowed directory, and only a regular file. */
async function readAllowedFile(url: string, opts: ContentFetchOptions): Promise<Buffer> {
  const forbidden = () => fail('file_url_forbidden', `content ${url.slice(0, 200)} is not inside a directory of file_url_dirs`, { url: url.slice(0, 200) });
  const allowed = await allowedHostFile(url, opts.fileUrlDirs);
  if ('problem' in allowed) {
    if (allowed.problem === 'forbidden') throw forbidden();
    throw fail('content_unavailable', `content ${url.slice(0, 200)}: no such file`, { url: url.slice(0, 200) });
  }
  const fh = await open(allowed.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw fail('content_unavailable', `content ${url.slice(0, 200)} is not a regular file`);
    if (st.size > opts.maxBytes) throw fail('content_too_large', `content ${url.slice(0, 200)} is larger than ${opts.maxBytes} bytes (content_fetch_max_mb)`, { maxBytes: opts.maxBytes });
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}
