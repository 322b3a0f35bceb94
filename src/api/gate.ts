import type { IncomingMessage } from 'node:http';
import { refuseCrossSite } from './auth/cross-site.js';
import type { OAuthVerifier } from './auth/oauth.js';
import { isFormBody, readBody } from './body.js';
import { ApiError } from './errors.js';
import { INSPECTOR_ASSETS } from './inspector/assets.js';
import { BASE_PATH } from './paths.js';
import { requestBaseUrl } from './present.js';

/**
 * The front door every request passes before routing: cross-site refusal for
 * state-changing requests, then two-legged OAuth on everything but the open
 * routes. Refusals are ApiErrors (403, 401) answered like any other error.
 */

export interface GateOptions {
  /** Null: no OAuth (`--no_oauth`). */
  oauth: OAuthVerifier | null;
  maxBodyBytes: number;
}

export interface Admitted {
  /** The OAuth consumer that signed the request; null for open routes and without OAuth. */
  consumerKey: string | null;
}

const INSPECTOR_PATHS = new Set(INSPECTOR_ASSETS.map((a) => a.path));

/** The path of the request target (origin-form or absolute-form), without its query. */
export function targetPath(req: IncomingMessage): string {
  const raw = req.url ?? '/';
  const path = raw.startsWith('/') ? raw.split('?')[0]! : (safeUrl(raw)?.pathname ?? raw);
  return path;
}

function safeUrl(text: string, base?: string): URL | null {
  try {
    return new URL(text, base);
  } catch {
    return null;
  }
}

/** Open without a signature: who answers (`GET /imagefactory`), and the inspector's static files (no data: the page signs every request it makes). */
export function isOpenRoute(method: string, path: string): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  return path === BASE_PATH || path === `${BASE_PATH}/` || INSPECTOR_PATHS.has(path);
}

export function isInspectorPath(path: string): boolean {
  return INSPECTOR_PATHS.has(path);
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || /^(::ffff:)?127\./.test(address);
}

/** The URL the client addressed: the scheme served, its Host, and the path and query as sent (`//a//b` stays so: that is what was signed). */
export function addressedUrl(req: IncomingMessage): URL {
  const url = safeUrl(requestBaseUrl(req));
  const raw = req.url ?? '/';
  const target = raw.startsWith('/') ? raw : (() => {
    const absolute = safeUrl(raw);
    return absolute ? `${absolute.pathname}${absolute.search}` : null;
  })();
  if (!url || target === null) throw new ApiError(400, 'bad_request', 'the request target is not a valid URL path');
  const q = target.indexOf('?');
  url.pathname = q === -1 ? target : target.slice(0, q);
  url.search = q === -1 ? '' : target.slice(q);
  return url;
}

export async function admit(req: IncomingMessage, opts: GateOptions): Promise<Admitted> {
  const method = req.method ?? 'GET';
  refuseCrossSite(req, requestBaseUrl(req));
  const path = targetPath(req);
  if (!opts.oauth) {
    // Without OAuth, the page that shows every build is for this host's own users only.
    if (isInspectorPath(path) && !isLoopback(req.socket.remoteAddress)) {
      throw new ApiError(403, 'inspector_loopback_only', 'with OAuth off (--no_oauth) the inspector page is served only to clients on this host (loopback)');
    }
    return { consumerKey: null };
  }
  if (isOpenRoute(method, path)) return { consumerKey: null };
  const url = addressedUrl(req);
  // A form body's fields are signed: read it (bounded) before routing; the route gets the same parse.
  const body = isFormBody(req) ? await readBody(req, opts.maxBodyBytes) : null;
  const form = body?.format === 'form' ? body.pairs : undefined;
  const verified = opts.oauth.verify({ method, url, authorization: req.headers.authorization, ...(form ? { form } : {}) });
  return { consumerKey: verified.consumerKey };
}
