import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DownloadCache, MediaError, type DownloadProgress } from '../../src/os/media/index.js';
import { serveMirror, tempDir, type FakeMirror } from './helpers.js';

let root: { path: string; cleanup: () => Promise<void> };
let mirror: FakeMirror;
let cacheDir: string;
let serial = 0;
const files = new Map<string, Buffer>();

/** A fresh file on the fake mirror, so each test counts its own requests. */
async function publish(name: string, size: number): Promise<{ path: string; url: string; data: Buffer }> {
  const path = `/pub/${++serial}/${name}`;
  const data = randomBytes(size);
  await mkdir(join(root.path, 'www', 'pub', String(serial)), { recursive: true });
  await writeFile(join(root.path, 'www', path), data);
  files.set(path, data);
  return { path, url: `${mirror.url}${path}`, data };
}

beforeAll(async () => {
  root = await tempDir('cache');
  await mkdir(join(root.path, 'www'));
  mirror = await serveMirror(join(root.path, 'www'));
});
afterAll(async () => {
  await mirror.close();
  await root.cleanup();
});
beforeEach(async () => {
  cacheDir = join(root.path, `cache-${++serial}`);
  mirror.delayMs = 0;
});

describe('the download cache', () => {
  it('downloads once, then serves the cached file', async () => {
    const f = await publish('vmlinuz', 5000);
    const cache = new DownloadCache({ dir: cacheDir });
    const first = await cache.get(f.url);
    expect(first.source).toBe('download');
    expect(await readFile(first.path)).toEqual(f.data);
    const second = await cache.get(f.url);
    expect(second).toMatchObject({ source: 'cache', path: first.path, sizeBytes: 5000 });
    expect(mirror.hits.get(f.path)).toBe(1);
    expect(first.path.endsWith('-vmlinuz')).toBe(true);
  });

  it('shares one download between two parallel requests for the same URL', async () => {
    const f = await publish('initrd.gz', 300_000);
    mirror.delayMs = 100;
    const cache = new DownloadCache({ dir: cacheDir });
    const progress: DownloadProgress[] = [];
    const [a, b] = await Promise.all([cache.get(f.url, { onProgress: (p) => progress.push(p) }), cache.get(f.url)]);
    expect(mirror.hits.get(f.path)).toBe(1);
    expect(a.path).toBe(b.path);
    expect(await readFile(a.path)).toEqual(f.data);
    expect(progress.at(-1)).toEqual({ url: f.url, receivedBytes: 300_000, totalBytes: 300_000 });
  });

  it('keys on the expected checksum too: a different expectation is a different download', async () => {
    const f = await publish('disc.iso', 1000);
    const cache = new DownloadCache({ dir: cacheDir });
    const a = await cache.get(f.url, { checksum: 'sha256:aaaa' });
    const b = await cache.get(f.url, { checksum: 'sha256:bbbb' });
    expect(a.path).not.toBe(b.path);
    expect(mirror.hits.get(f.path)).toBe(2);
    expect((await cache.get(f.url, { checksum: 'sha256:aaaa' })).source).toBe('cache');
  });

  it('is safe for two processes sharing the directory: both get a complete file, no temporary file is left', async () => {
    const f = await publish('big.iso', 400_000);
    mirror.delayMs = 50;
    const [a, b] = await Promise.all([new DownloadCache({ dir: cacheDir }).get(f.url), new DownloadCache({ dir: cacheDir }).get(f.url)]);
    expect(a.path).toBe(b.path);
    expect(await readFile(a.path)).toEqual(f.data);
    expect(await readdir(cacheDir)).toEqual([a.path.split('/').pop()]);
  });

  it('evicts the least recently used files beyond the size bound', async () => {
    const [a, b, c] = [await publish('a', 100), await publish('b', 100), await publish('c', 100)];
    const cache = new DownloadCache({ dir: cacheDir, maxBytes: 250 });
    const pause = () => new Promise((r) => setTimeout(r, 20));
    (await cache.get(a.url)).release();
    await pause();
    (await cache.get(b.url)).release();
    await pause();
    (await cache.get(a.url)).release(); // a is now more recently used than b
    await pause();
    (await cache.get(c.url)).release();
    const kept = (await cache.entries()).map((e) => e.key);
    expect(kept).toEqual([cache.keyFor(a.url), cache.keyFor(c.url)]);
    expect((await cache.entries()).reduce((s, e) => s + e.sizeBytes, 0)).toBeLessThanOrEqual(250);
  });

  it('keeps files still held by this process, whatever the bound', async () => {
    const [a, b] = [await publish('held', 200), await publish('next', 200)];
    const cache = new DownloadCache({ dir: cacheDir, maxBytes: 250 });
    const held = await cache.get(a.url);
    await cache.get(b.url);
    expect((await cache.entries()).map((e) => e.key).sort()).toEqual([cache.keyFor(a.url), cache.keyFor(b.url)].sort());
    held.release();
    expect(await cache.prune()).toEqual([cache.keyFor(a.url)]);
    expect(await readFile(join(cacheDir, cache.keyFor(b.url)))).toEqual(b.data);
  });

  it('aborting mid-download rejects with download_aborted and leaves no partial file', async () => {
    const f = await publish('stalls.iso', 512 * 1024);
    mirror.stall.add(f.path);
    const cache = new DownloadCache({ dir: cacheDir });
    const controller = new AbortController();
    let seen = 0;
    const pending = cache.get(f.url, {
      signal: controller.signal,
      onProgress: (p) => {
        seen = p.receivedBytes;
        if (p.receivedBytes > 0) controller.abort();
      },
    });
    await expect(pending).rejects.toMatchObject({ name: 'MediaError', code: 'download_aborted' });
    expect(seen).toBeGreaterThan(0);
    expect(seen).toBeLessThan(512 * 1024);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('keeps a shared download going when only one of its waiters aborts', async () => {
    const f = await publish('shared.iso', 200_000);
    mirror.delayMs = 150;
    const cache = new DownloadCache({ dir: cacheDir });
    const controller = new AbortController();
    const quitter = cache.get(f.url, { signal: controller.signal });
    const stayer = cache.get(f.url);
    setTimeout(() => controller.abort(), 30);
    await expect(quitter).rejects.toMatchObject({ code: 'download_aborted' });
    const kept = await stayer;
    expect(await readFile(kept.path)).toEqual(f.data);
    expect(mirror.hits.get(f.path)).toBe(1);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const f = await publish('never', 10);
    const cache = new DownloadCache({ dir: cacheDir });
    await expect(cache.get(f.url, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'download_aborted' });
    expect(mirror.hits.get(f.path)).toBeUndefined();
  });

  it('fails with download_failed on HTTP errors and caches nothing', async () => {
    const cache = new DownloadCache({ dir: cacheDir });
    const error = await cache.get(`${mirror.url}/pub/missing.iso`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaError);
    expect(error).toMatchObject({ code: 'download_failed', message: expect.stringContaining('HTTP 404') });
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('runs the check before a download enters the cache, and discards a download that fails it', async () => {
    const f = await publish('checked.iso', 1000);
    const cache = new DownloadCache({ dir: cacheDir });
    const bad = cache.get(f.url, {
      verify: async () => {
        throw new MediaError('checksum_mismatch', 'nope');
      },
    });
    await expect(bad).rejects.toMatchObject({ code: 'checksum_mismatch' });
    expect(await readdir(cacheDir)).toEqual([]);
    let checked = '';
    const good = await cache.get(f.url, { verify: async (path) => void (checked = path) });
    expect(good.source).toBe('download');
    expect(checked).not.toBe(good.path); // checked under its temporary name, before the rename
  });

  it('serves file:// URLs in place', async () => {
    const f = await publish('local.iso', 123);
    const local = join(root.path, 'www', f.path);
    const cache = new DownloadCache({ dir: cacheDir });
    const got = await cache.get(pathToFileURL(local).toString());
    expect(got).toMatchObject({ source: 'file', path: local, sizeBytes: 123 });
    await expect(cache.get(pathToFileURL(join(root.path, 'nope.iso')).toString())).rejects.toMatchObject({ code: 'download_failed' });
    expect(mirror.hits.get(f.path)).toBeUndefined();
  });

  it('with file_url_dirs, serves a file:// URL only by a real path inside them: a symlink out is file_url_forbidden', async () => {
    const allowed = join(root.path, `isos-${serial}`);
    await mkdir(allowed);
    await writeFile(join(allowed, 'ok.iso'), 'iso');
    const secret = join(root.path, `secret-${serial}`);
    await writeFile(secret, 'host secret');
    await symlink(secret, join(allowed, 'link.iso'));
    const cache = new DownloadCache({ dir: cacheDir, fileUrlDirs: [allowed] });
    expect(await cache.get(pathToFileURL(join(allowed, 'ok.iso')).toString())).toMatchObject({ source: 'file', path: join(allowed, 'ok.iso'), sizeBytes: 3 });
    const refused = (url: string) => cache.get(url).then(() => 'served', (e: MediaError) => `${e.code}: ${e.message}`);
    expect(await refused(pathToFileURL(join(allowed, 'link.iso')).toString())).toMatch(/^file_url_forbidden: file:\/\/.*link\.iso is a file of the build host outside file_url_dirs \(symlinks resolved\)$/);
    expect(await refused(pathToFileURL(secret).toString())).toMatch(/^file_url_forbidden: /);
    expect(await refused(pathToFileURL(join(allowed, 'absent.iso')).toString())).toMatch(/^download_failed: .*no such file$/);
    expect(await readdir(cacheDir).catch(() => [])).toEqual([]);
  });

  it('looks URLs up in a local mirror directory first (host/path), and downloads what it lacks', async () => {
    const mirrorDir = join(root.path, `mirror-${serial}`);
    await mkdir(join(mirrorDir, '127.0.0.1', 'debian', 'dists'), { recursive: true });
    await writeFile(join(mirrorDir, '127.0.0.1', 'debian', 'dists', 'Release'), 'from the local mirror\n');
    const cache = new DownloadCache({ dir: cacheDir, mirrorDir });
    const got = await cache.get(`${mirror.url}/debian/dists/Release`);
    expect(got.source).toBe('mirror');
    expect(await readFile(got.path, 'utf8')).toBe('from the local mirror\n');
    expect(mirror.hits.get('/debian/dists/Release')).toBeUndefined();
    // Not in the mirror directory: downloaded as usual; a path escaping the directory is never looked up.
    const f = await publish('elsewhere', 10);
    expect((await cache.get(f.url)).source).toBe('download');
    await expect(cache.get(`${mirror.url}/%2e%2e/%2e%2e/etc/passwd`)).rejects.toMatchObject({ code: 'download_failed' });
  });

  it('refuses URLs it cannot fetch', async () => {
    const cache = new DownloadCache({ dir: cacheDir });
    await expect(cache.get('ftp://ftp.example.com/x.iso')).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(cache.get('not a url')).rejects.toMatchObject({ code: 'invalid_argument' });
  });
});
