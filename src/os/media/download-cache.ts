import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { fileURLToPath } from 'node:url';
import { allowedHostFile } from '../allowed-host-file.js';
import { MediaError } from './errors.js';

export interface DownloadCacheOptions {
  /** Directory holding cached files (created when missing). */
  dir: string;
  /** Bound on the total size of cached files; least recently used files beyond it are evicted. No bound by default. */
  maxBytes?: number;
  /**
   * A local directory standing in for mirrors: `http://host/path/x` is
   * served from `<mirrorDir>/host/path/x` when that file exists.
   */
  mirrorDir?: string;
  /**
   * The configuration's `file_url_dirs`: when given, a `file://` URL is
   * served only if its real path is inside one of them (a template's media
   * must not hand the guest any other host file).
   */
  fileUrlDirs?: readonly string[];
}

export interface DownloadProgress {
  url: string;
  receivedBytes: number;
  /** From Content-Length; null when the server did not say. */
  totalBytes: number | null;
}

export interface GetOptions {
  /**
   * The expected checksum (or the URL of the checksum file): part of the
   * key, so a changed expectation never reuses an older download.
   */
  checksum?: string;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  /**
   * Checks a finished download before it enters the cache (and a
   * `file://` or mirror file before it is handed out); a throw discards the
   * download. Downloads shared by concurrent callers run the first caller's
   * check, so give the same check for the same key.
   */
  verify?: (path: string, signal: AbortSignal) => Promise<void>;
}

export interface CachedFile {
  path: string;
  sizeBytes: number;
  /** `file`: a file:// URL used in place; `mirror`: from `mirrorDir`; `cache`: an earlier download; `download`: fetched now. */
  source: 'file' | 'mirror' | 'cache' | 'download';
  /**
   * Lets this process evict the file again; until then it is kept whatever
   * the size bound says. Other processes sharing the directory do not see
   * this hold: a build that needs the file for long hard-links it into its
   * own workdir, which keeps the data even if the cache entry is evicted.
   */
  release(): void;
}

interface SharedDownload {
  done: Promise<{ path: string; sizeBytes: number }>;
  controller: AbortController;
  waiters: number;
  listeners: Set<(progress: DownloadProgress) => void>;
}

const TMP_PREFIX = '.tmp-';
const STALE_TMP_MS = 24 * 3600 * 1000;
const PROGRESS_INTERVAL_MS = 250;

/**
 * Install media by URL. Safe for parallel builds: a download goes to a
 * temporary file in the cache directory and is renamed into place, so a
 * cached file is always complete; concurrent requests for the same key in
 * this process share one download; across processes the last rename wins
 * (both copies are complete and identical). Files are touched on use and
 * the least recently used are evicted beyond `maxBytes`.
 */
export class DownloadCache {
  readonly dir: string;
  readonly maxBytes: number;
  readonly mirrorDir: string | null;
  readonly fileUrlDirs: readonly string[] | null;
  readonly #inflight = new Map<string, SharedDownload>();
  readonly #pins = new Map<string, number>();

  constructor(options: DownloadCacheOptions) {
    this.dir = resolve(options.dir);
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    this.mirrorDir = options.mirrorDir ? resolve(options.mirrorDir) : null;
    this.fileUrlDirs = options.fileUrlDirs ?? null;
  }

  /** The cache file name of a URL and expected checksum: a hash for uniqueness, the URL's basename for people. */
  keyFor(url: string, checksum?: string): string {
    const digest = createHash('sha256').update(`${url}\n${checksum ?? ''}`).digest('hex').slice(0, 32);
    const name = basename(safePathname(url)).replace(/[^A-Za-z0-9._+-]+/g, '_').slice(-80);
    return name ? `${digest}-${name}` : digest;
  }

  async get(url: string, options: GetOptions = {}): Promise<CachedFile> {
    const signal = options.signal ?? new AbortController().signal;
    throwIfAborted(signal, url);
    const parsed = parseUrl(url);
    if (parsed.protocol === 'file:') return this.#local(await this.#hostFile(url, parsed), 'file', url, options, signal);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new MediaError('invalid_argument', `cannot download ${describeUrl(url)}: only http, https and file URLs are supported`);
    }
    const mirrored = await this.#mirrorPath(parsed);
    if (mirrored) return this.#local(mirrored, 'mirror', url, options, signal);

    await mkdir(this.dir, { recursive: true });
    const key = this.keyFor(url, options.checksum);
    const path = join(this.dir, key);
    const hit = await statFile(path);
    if (hit) {
      const now = new Date();
      await utimes(path, now, now).catch(() => {});
      return this.#handout(key, path, hit.size, 'cache');
    }
    const { path: fetched, sizeBytes } = await this.#join(key, url, options, signal);
    return this.#handout(key, fetched, sizeBytes, 'download');
  }

  /** Removes the cached file of a URL (e.g. after it failed a later check). */
  async remove(url: string, checksum?: string): Promise<void> {
    await rm(join(this.dir, this.keyFor(url, checksum)), { force: true });
  }

  /** Cached files, least recently used first. */
  async entries(): Promise<{ key: string; path: string; sizeBytes: number; lastUsedMs: number }[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const out: { key: string; path: string; sizeBytes: number; lastUsedMs: number }[] = [];
    for (const key of names) {
      if (key.startsWith(TMP_PREFIX)) continue;
      const path = join(this.dir, key);
      const st = await statFile(path);
      if (st) out.push({ key, path, sizeBytes: st.size, lastUsedMs: st.mtimeMs });
    }
    return out.sort((a, b) => a.lastUsedMs - b.lastUsedMs || a.key.localeCompare(b.key));
  }

  /**
   * Evicts least recently used files until the total is within `maxBytes`
   * (files held by this process, and `keep`, are kept), and removes
   * temporary files left by crashed processes. Returns the evicted keys.
   */
  async prune(keep?: string): Promise<string[]> {
    const evicted: string[] = [];
    const entries = await this.entries();
    let total = entries.reduce((sum, e) => sum + e.sizeBytes, 0);
    for (const entry of entries) {
      if (total <= this.maxBytes) break;
      if (this.#pins.has(entry.key) || entry.key === keep) continue;
      await rm(entry.path, { force: true });
      total -= entry.sizeBytes;
      evicted.push(entry.key);
    }
    await this.#removeStaleTemporaries();
    return evicted;
  }

  async #hostFile(url: string, parsed: URL): Promise<string> {
    if (this.fileUrlDirs === null) return fileURLToPath(parsed);
    const allowed = await allowedHostFile(url, this.fileUrlDirs);
    if ('path' in allowed) return allowed.path;
    if (allowed.problem === 'missing') throw new MediaError('download_failed', `${describeUrl(url)}: no such file`);
    throw new MediaError('file_url_forbidden', `${describeUrl(url)} is a file of the build host outside file_url_dirs (symlinks resolved)`);
  }

  async #local(path: string, source: 'file' | 'mirror', url: string, options: GetOptions, signal: AbortSignal): Promise<CachedFile> {
    const st = await statFile(path);
    if (!st) throw new MediaError('download_failed', `${describeUrl(url)}: no such file ${path}`);
    if (options.verify) await options.verify(path, signal);
    options.onProgress?.({ url, receivedBytes: st.size, totalBytes: st.size });
    return { path, sizeBytes: st.size, source, release: () => {} };
  }

  async #mirrorPath(url: URL): Promise<string | null> {
    if (!this.mirrorDir) return null;
    let relative: string;
    try {
      relative = decodeURIComponent(url.pathname);
    } catch {
      return null;
    }
    const candidate = resolve(this.mirrorDir, url.hostname, `.${relative}`);
    // A crafted path must not reach outside the mirror directory.
    if (!candidate.startsWith(this.mirrorDir + sep)) return null;
    return (await statFile(candidate)) ? candidate : null;
  }

  #handout(key: string, path: string, sizeBytes: number, source: CachedFile['source']): CachedFile {
    this.#pins.set(key, (this.#pins.get(key) ?? 0) + 1);
    let released = false;
    return {
      path,
      sizeBytes,
      source,
      release: () => {
        if (released) return;
        released = true;
        const left = (this.#pins.get(key) ?? 1) - 1;
        if (left > 0) this.#pins.set(key, left);
        else this.#pins.delete(key);
      },
    };
  }

  /** Joins the in-flight download of `key`, starting it if there is none; each caller can abort its own wait. */
  #join(key: string, url: string, options: GetOptions, signal: AbortSignal): Promise<{ path: string; sizeBytes: number }> {
    let shared = this.#inflight.get(key);
    if (!shared) {
      const started: SharedDownload = { controller: new AbortController(), waiters: 0, listeners: new Set(), done: undefined as never };
      started.done = this.#download(key, url, started, options.verify);
      this.#inflight.set(key, started);
      const forget = () => {
        if (this.#inflight.get(key) === started) this.#inflight.delete(key);
      };
      started.done.then(forget, forget);
      shared = started;
    }
    const download = shared;
    download.waiters++;
    const listener = options.onProgress;
    if (listener) download.listeners.add(listener);

    return new Promise((resolvePromise, rejectPromise) => {
      let settled = false;
      const leave = () => {
        settled = true;
        download.waiters--;
        if (listener) download.listeners.delete(listener);
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        if (settled) return;
        leave();
        const error = abortedError(url);
        if (download.waiters > 0) return rejectPromise(error);
        // The last one waiting gave up: stop the download, and answer once its partial file is gone.
        if (this.#inflight.get(key) === download) this.#inflight.delete(key);
        download.controller.abort();
        download.done.then(
          () => rejectPromise(error),
          () => rejectPromise(error),
        );
      };
      signal.addEventListener('abort', onAbort, { once: true });
      // Aborted while this call was still looking in the cache: an 'abort' event will not come again.
      if (signal.aborted) onAbort();
      download.done.then(
        (result) => {
          if (settled) return;
          leave();
          resolvePromise(result);
        },
        (error: unknown) => {
          if (settled) return;
          leave();
          rejectPromise(error);
        },
      );
    });
  }

  async #download(
    key: string,
    url: string,
    shared: SharedDownload,
    verify: GetOptions['verify'],
  ): Promise<{ path: string; sizeBytes: number }> {
    const signal = shared.controller.signal;
    const finalPath = join(this.dir, key);
    const tmpPath = join(this.dir, `${TMP_PREFIX}${key}-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      const response = await fetch(url, { signal, redirect: 'follow' });
      if (!response.ok || !response.body) {
        await response.body?.cancel().catch(() => {});
        throw new MediaError('download_failed', `GET ${describeUrl(url)}: HTTP ${response.status} ${response.statusText}`.trim(), { status: response.status });
      }
      const length = response.headers.get('content-length');
      const totalBytes = length !== null && /^\d+$/.test(length) ? Number(length) : null;
      let receivedBytes = 0;
      let lastReport = 0;
      const report = (force: boolean) => {
        const now = Date.now();
        if (!force && now - lastReport < PROGRESS_INTERVAL_MS) return;
        lastReport = now;
        for (const listener of shared.listeners) listener({ url, receivedBytes, totalBytes });
      };
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          receivedBytes += chunk.length;
          report(false);
          callback(null, chunk);
        },
      });
      await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), counter, createWriteStream(tmpPath, { flags: 'wx' }), { signal });
      if (totalBytes !== null && receivedBytes !== totalBytes) {
        throw new MediaError('download_failed', `GET ${describeUrl(url)}: got ${receivedBytes} of ${totalBytes} bytes`);
      }
      report(true);
      if (verify) await verify(tmpPath, signal);
      await rename(tmpPath, finalPath);
      await this.prune(key).catch(() => []);
      return { path: finalPath, sizeBytes: receivedBytes };
    } catch (error) {
      await rm(tmpPath, { force: true });
      if (signal.aborted) throw abortedError(url);
      if (error instanceof MediaError) throw error;
      const cause = error instanceof Error ? (error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message) : String(error);
      throw new MediaError('download_failed', `GET ${describeUrl(url)}: ${cause}`);
    }
  }

  async #removeStaleTemporaries(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!name.startsWith(TMP_PREFIX)) continue;
      const st = await statFile(join(this.dir, name));
      if (st && Date.now() - st.mtimeMs > STALE_TMP_MS) await rm(join(this.dir, name), { force: true });
    }
  }
}

function parseUrl(url: string): URL {
  try {
    return new URL(url);
  } catch {
    throw new MediaError('invalid_argument', `${JSON.stringify(url)} is not a URL`);
  }
}

function safePathname(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname);
  } catch {
    return '';
  }
}

/** The URL without credentials, for messages and logs. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url;
  }
}

async function statFile(path: string): Promise<{ size: number; mtimeMs: number } | null> {
  try {
    const st = await stat(path);
    return st.isFile() ? { size: st.size, mtimeMs: st.mtimeMs } : null;
  } catch {
    return null;
  }
}

function abortedError(url: string): MediaError {
  return new MediaError('download_aborted', `download of ${describeUrl(url)} was aborted`);
}

function throwIfAborted(signal: AbortSignal, url: string): void {
  if (signal.aborted) throw abortedError(url);
}
