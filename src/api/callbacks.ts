import type { EngineApi } from '../engine/types.js';
import { isFinalStatus, type ImageRecord } from '../model/index.js';

/**
 * `parameters.callbacks`: every status change is PUT to each URL as the
 * image's JSON, retried with backoff, never blocking the build. Credentials
 * in a URL become Basic auth and are never logged.
 */
export interface CallbackOptions {
  retries?: number;
  baseDelayMs?: number;
  log: (line: string) => void;
}

export function callbackUrls(parameters: Record<string, unknown>): string[] {
  const raw = parameters.callbacks;
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  return list.filter((u): u is string => typeof u === 'string' && /^https?:\/\//i.test(u));
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '***';
      u.password = '';
    }
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}

export async function deliverCallback(url: string, body: unknown, opts: CallbackOptions): Promise<boolean> {
  const retries = opts.retries ?? 4;
  const base = opts.baseDelayMs ?? 500;
  const u = new URL(url);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (u.username || u.password) {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
    u.username = '';
    u.password = '';
  }
  for (let attempt = 0; attempt <= retries; attempt++) {
    try {
      const res = await fetch(u, { method: 'PUT', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return true;
      opts.log(`callback ${redactUrl(url)} answered ${res.status} (attempt ${attempt + 1})`);
    } catch (e) {
      opts.log(`callback ${redactUrl(url)} failed: ${(e as Error).message} (attempt ${attempt + 1})`);
    }
    if (attempt < retries) await new Promise((r) => setTimeout(r, base * 2 ** attempt));
  }
  return false;
}

/**
 * Delivers `parameters.callbacks` as a listener on the engine's events: at
 * every status change of an image, each URL gets the image's JSON, in
 * status order per image, never blocking a build. A delivery that fails is
 * logged in the build's log, and never reaches the engine or the daemon.
 */
export function attachCallbacks(engine: EngineApi, opts: { present: (image: ImageRecord) => unknown; deliver?: typeof deliverCallback }): () => void {
  const deliver = opts.deliver ?? deliverCallback;
  const lastStatus = new Map<string, string>();
  const chains = new Map<string, Promise<unknown>>();
  return engine.subscribe((event) => {
    const { image } = event;
    if (event.type === 'deleted') {
      lastStatus.delete(image.id);
      return;
    }
    if (lastStatus.get(image.id) === image.status) return;
    lastStatus.set(image.id, image.status);
    if (isFinalStatus(image.status)) lastStatus.delete(image.id);
    const urls = callbackUrls(image.parameters);
    if (!urls.length) return;
    const body = opts.present(image);
    const log = (line: string) => engine.note(image.id, line);
    const chain = (chains.get(image.id) ?? Promise.resolve())
      .then(() => Promise.all(urls.map((u) => deliver(u, body, { log }).catch((e: Error) => log(`callback ${redactUrl(u)} failed: ${e.message}`)))))
      .catch(() => undefined);
    chains.set(image.id, chain);
    void chain.then(() => {
      if (chains.get(image.id) === chain) chains.delete(image.id);
    });
  });
}
