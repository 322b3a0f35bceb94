/**
 * The text that an OAuth 1.0a signature covers (RFC 5849 §3.4.1), with no
 * I/O and no Node import: the daemon's verifier, the `imagefactory` client
 * and the inspector page (in the browser) all build it here, so they cannot
 * disagree about it.
 */

export type SignatureMethod = 'HMAC-SHA1' | 'HMAC-SHA256';
export const SIGNATURE_METHODS: readonly SignatureMethod[] = ['HMAC-SHA1', 'HMAC-SHA256'];

/** A name and a value, decoded; repeated names are kept (they are all signed). */
export type Param = readonly [name: string, value: string];

/** RFC 3986 unreserved characters stay, everything else is %XX of its UTF-8 bytes (§3.6). */
export function percentEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export class ParamSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ParamSyntaxError';
  }
}

/**
 * `a=1&b=x+y` as application/x-www-form-urlencoded pairs (`+` is a space),
 * in order; throws ParamSyntaxError on a malformed %-escape.
 */
export function parseFormPairs(text: string): Param[] {
  const out: Param[] = [];
  if (text === '') return out;
  for (const part of text.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const [rawName, rawValue] = eq === -1 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)];
    out.push([decode(rawName), decode(rawValue)]);
  }
  return out;
}

function decode(text: string, plusIsSpace = true): string {
  try {
    return decodeURIComponent(plusIsSpace ? text.replace(/\+/g, ' ') : text);
  } catch {
    throw new ParamSyntaxError(`malformed %-escape in "${text.slice(0, 40)}"`);
  }
}

/** `scheme://host[:port]/path`: lower-case scheme and host, no default port, no query or fragment (§3.4.1.2). */
export function baseStringUri(url: URL): string {
  return `${url.protocol.toLowerCase()}//${url.host.toLowerCase()}${url.pathname}`;
}

/** The parameters, encoded, sorted by name then value, joined with `&` (§3.4.1.3.2); `oauth_signature` and `realm` are left out. */
export function normalizedParameters(params: readonly Param[]): string {
  return params
    .filter(([name]) => name !== 'oauth_signature' && name !== 'realm')
    .map(([name, value]) => [percentEncode(name), percentEncode(value)] as const)
    .sort(([an, av], [bn, bv]) => (an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

/**
 * `METHOD&base-uri&parameters`, each part percent-encoded. `params` are every
 * query parameter, every form-body parameter and the `oauth_*` protocol
 * parameters however they were sent.
 */
export function signatureBaseString(method: string, url: URL, params: readonly Param[]): string {
  return [method.toUpperCase(), baseStringUri(url), normalizedParameters(params)].map(percentEncode).join('&');
}

/** Two-legged: the consumer secret and an empty token secret (§3.4.2). */
export function signingKey(consumerSecret: string, tokenSecret = ''): string {
  return `${percentEncode(consumerSecret)}&${percentEncode(tokenSecret)}`;
}

/** The query of a URL as decoded pairs. */
export function queryParams(url: URL): Param[] {
  return parseFormPairs(url.search.replace(/^\?/, ''));
}

/**
 * The parameters of an `Authorization: OAuth k="v", …` header (§3.5.1),
 * decoded; null when the header is not of the OAuth scheme. Throws
 * ParamSyntaxError when it is, but cannot be read.
 */
export function parseAuthorizationHeader(header: string): Param[] | null {
  const m = /^\s*OAuth(?:\s+([\s\S]*))?$/i.exec(header);
  if (!m) return null;
  const rest = (m[1] ?? '').trim();
  const out: Param[] = [];
  if (rest === '') return out;
  const item = /\s*([A-Za-z0-9_.~%-]+)\s*=\s*"([^"]*)"\s*(?:,|$)/y;
  let at = 0;
  while (at < rest.length) {
    item.lastIndex = at;
    const found = item.exec(rest);
    if (!found) throw new ParamSyntaxError('the OAuth Authorization header is not a list of name="value" pairs');
    // Header values are percent-encoded, not form-encoded: a `+` (of a careless client's base64) is a plus.
    out.push([decode(found[1]!, false), decode(found[2]!, false)]);
    at = item.lastIndex;
  }
  return out;
}

/** `OAuth realm="…", name="value", …`, every name and value percent-encoded. */
export function authorizationHeader(params: readonly Param[], realm?: string): string {
  const parts = params.map(([name, value]) => `${percentEncode(name)}="${percentEncode(value)}"`);
  return `OAuth ${realm !== undefined ? `realm="${percentEncode(realm)}", ` : ''}${parts.join(', ')}`;
}
