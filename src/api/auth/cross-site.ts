import type { IncomingMessage } from 'node:http';
import { ApiError } from '../errors.js';

/**
 * Cross-site request refusal (CSRF): a web page the operator visits must not
 * be able to submit, cancel or delete builds through the operator's browser.
 * Browsers say where a request comes from (`Origin`, `Sec-Fetch-Site`); a
 * state-changing request that a browser marks as coming from another site,
 * or a form post from any page, is refused with 403. Clients that are not
 * browsers (curl, the original's client, `imagefactory`) send neither header
 * and keep working, form-encoded bodies included.
 */

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** The body types a page may send cross-site without a CORS preflight. */
const SIMPLE_BODY = /^(application\/x-www-form-urlencoded|multipart\/form-data|text\/plain)\b/i;

const refused = (message: string, details: Record<string, unknown>) => new ApiError(403, 'cross_site_refused', message, details);

/** The origin (`scheme://host[:port]`, default port dropped, lower case) of a URL; null when it is not one. */
function originOf(text: string): string | null {
  try {
    const u = new URL(text);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    return `${u.protocol}//${u.host}`.toLowerCase();
  } catch {
    return null;
  }
}

/**
 * Throws 403 `cross_site_refused` when a state-changing request comes from
 * another site, or is a browser's form post. `servedOrigin` is this daemon's
 * origin as the client addressed it (the scheme served and the Host header).
 */
export function refuseCrossSite(req: IncomingMessage, servedOrigin: string): void {
  if (SAFE_METHODS.has(req.method ?? 'GET')) return;
  const origin = req.headers.origin;
  const site = req.headers['sec-fetch-site'];
  const ours = originOf(servedOrigin);
  if (origin !== undefined) {
    const theirs = origin === 'null' ? null : originOf(origin);
    if (theirs === null || theirs !== ours) {
      throw refused(`a request from another site (Origin ${origin.slice(0, 100)}) may not change anything on this daemon`, { origin: origin.slice(0, 200), expected: ours });
    }
  }
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw refused(`a request from another site (Sec-Fetch-Site: ${String(site).slice(0, 40)}) may not change anything on this daemon`, { sec_fetch_site: String(site).slice(0, 40) });
  }
  // Browsers send Origin with every POST and DELETE, and Sec-Fetch-Site; Node's fetch sends Sec-Fetch-Mode too, so that one proves nothing.
  const fromBrowser = origin !== undefined || site !== undefined;
  const type = req.headers['content-type'] ?? '';
  if (fromBrowser && SIMPLE_BODY.test(type)) {
    throw refused(`a browser may not send ${type.split(';')[0]} bodies to this daemon (a cross-site form could); send application/json`, { content_type: type.split(';')[0] });
  }
}
