import { timingSafeEqual } from 'node:crypto';
import { ApiError } from '../errors.js';
import { NonceStore } from './nonces.js';
import { hmacSignature } from './sign.js';
import {
  parseAuthorizationHeader,
  ParamSyntaxError,
  queryParams,
  signatureBaseString,
  SIGNATURE_METHODS,
  signingKey,
  type Param,
  type SignatureMethod,
} from './signature-base.js';

/**
 * Two-legged OAuth 1.0a (RFC 5849) as Image Factory used it: a consumer key
 * and secret from the configuration's `clients`, no tokens. The protocol
 * parameters come from the `Authorization` header, or from the query or a
 * form body (browsers' EventSource cannot send headers); the signature
 * covers the method, the URL as the client reached us, the query and form
 * parameters. Timestamps outside the window and reused nonces are refused.
 */

export const REALM = 'imagefactory';
/** Seconds a request's timestamp may differ from the daemon's clock. */
export const DEFAULT_WINDOW_SECONDS = 300;

export interface OAuthRequest {
  method: string;
  /** The absolute URL as the client addressed it: the scheme served, its Host, the raw path and query. */
  url: URL;
  authorization: string | undefined;
  /** Decoded fields of an application/x-www-form-urlencoded body, if the request has one. */
  form?: readonly Param[];
}

export interface OAuthVerified {
  consumerKey: string;
  signatureMethod: SignatureMethod;
}

export interface OAuthOptions {
  /** Consumer key → secret. */
  clients: Readonly<Record<string, string>>;
  windowSeconds?: number;
  now?: () => number;
  maxNonces?: number;
}

/** `oauth_problem` values of the OAuth problem-reporting extension, also the end of our error codes. */
type Problem =
  | 'parameter_absent'
  | 'parameter_rejected'
  | 'signature_method_rejected'
  | 'timestamp_refused'
  | 'nonce_used'
  | 'signature_invalid'
  | 'token_rejected'
  | 'version_rejected';

const REQUIRED = ['oauth_consumer_key', 'oauth_signature_method', 'oauth_signature', 'oauth_timestamp', 'oauth_nonce'] as const;

/** A 401 with `WWW-Authenticate: OAuth` (and the problem, as the problem-reporting extension words it). */
export function unauthorized(problem: Problem, message: string, details?: Record<string, unknown>): ApiError {
  return new ApiError(401, `oauth_${problem}`, message, details, { 'www-authenticate': `OAuth realm="${REALM}", oauth_problem="${problem}"` });
}

export class OAuthVerifier {
  private readonly nonces: NonceStore;
  private readonly windowSeconds: number;
  private readonly now: () => number;
  /** Verifying a signature for an unknown key costs the same as for a known one. */
  private static readonly DECOY_SECRET = 'imagefactory-no-such-consumer';

  constructor(private readonly opts: OAuthOptions) {
    this.windowSeconds = opts.windowSeconds ?? DEFAULT_WINDOW_SECONDS;
    this.now = opts.now ?? Date.now;
    this.nonces = new NonceStore(opts.maxNonces, this.now);
  }

  get consumerCount(): number {
    return Object.keys(this.opts.clients).length;
  }

  /** The nonces remembered now (for tests and metrics). */
  get rememberedNonces(): number {
    return this.nonces.size;
  }

  /** Resolves the consumer of a correctly signed, fresh request; throws a 401 ApiError otherwise. */
  verify(req: OAuthRequest): OAuthVerified {
    const { protocol, all } = this.collect(req);
    const one = (name: string) => protocol.get(name);
    for (const name of REQUIRED) {
      if (one(name) === undefined || one(name) === '') {
        throw unauthorized('parameter_absent', `the OAuth parameter ${name} is missing`, { parameter: name });
      }
    }
    const version = one('oauth_version');
    if (version !== undefined && version !== '1.0') throw unauthorized('version_rejected', `oauth_version must be 1.0, not "${version.slice(0, 20)}"`);
    const token = one('oauth_token');
    if (token !== undefined && token !== '') throw unauthorized('token_rejected', 'this daemon uses two-legged OAuth: requests carry no oauth_token');
    const method = one('oauth_signature_method')! as SignatureMethod;
    if (!SIGNATURE_METHODS.includes(method)) {
      throw unauthorized('signature_method_rejected', `oauth_signature_method must be one of ${SIGNATURE_METHODS.join(', ')}`, { supported: SIGNATURE_METHODS });
    }
    const timestampText = one('oauth_timestamp')!;
    if (!/^\d{1,12}$/.test(timestampText)) throw unauthorized('parameter_rejected', 'oauth_timestamp must be whole seconds since 1970');
    const timestamp = Number(timestampText);
    const nowSeconds = Math.floor(this.now() / 1000);
    if (Math.abs(nowSeconds - timestamp) > this.windowSeconds) {
      throw unauthorized('timestamp_refused', `oauth_timestamp is more than ${this.windowSeconds} s away from the daemon's clock; check the client's clock`, {
        server_time: nowSeconds,
        window_seconds: this.windowSeconds,
      });
    }
    const nonce = one('oauth_nonce')!;
    if (nonce.length > 255) throw unauthorized('parameter_rejected', 'oauth_nonce is longer than 255 characters');

    const consumerKey = one('oauth_consumer_key')!;
    const known = Object.prototype.hasOwnProperty.call(this.opts.clients, consumerKey);
    const secret = known ? this.opts.clients[consumerKey]! : OAuthVerifier.DECOY_SECRET;
    const expected = Buffer.from(hmacSignature(method, signatureBaseString(req.method, req.url, all), signingKey(secret)), 'base64');
    const given = Buffer.from(one('oauth_signature')!, 'base64');
    const same = given.length === expected.length && timingSafeEqual(given, expected);
    // One answer for an unknown key and a wrong signature: the answer does not tell which keys exist.
    if (!same || !known) throw unauthorized('signature_invalid', 'the OAuth signature does not match: wrong consumer key or secret, or the request was altered');

    const remembered = this.nonces.remember(consumerKey, timestamp, nonce, (timestamp + this.windowSeconds) * 1000 + 1000);
    if (remembered === 'reused') throw unauthorized('nonce_used', 'this oauth_nonce was already used with this timestamp: a replayed request is refused');
    if (remembered === 'full') throw new ApiError(503, 'oauth_busy', 'too many signed requests in the timestamp window to remember their nonces; retry shortly', undefined, { 'retry-after': '5' });
    return { consumerKey, signatureMethod: method };
  }

  /**
   * The protocol parameters (from the header, or else the query and form) and
   * every parameter that is signed. A protocol parameter given twice, or
   * given both in the header and elsewhere, is refused: which one to believe?
   */
  private collect(req: OAuthRequest): { protocol: Map<string, string>; all: Param[] } {
    let header: Param[] | null = null;
    let query: Param[];
    try {
      if (req.authorization !== undefined) header = parseAuthorizationHeader(req.authorization);
      query = queryParams(req.url);
    } catch (e) {
      if (e instanceof ParamSyntaxError) throw unauthorized('parameter_rejected', e.message);
      throw e;
    }
    const form = req.form ?? [];
    const elsewhere = [...query, ...form].filter(([name]) => name.startsWith('oauth_'));
    const headerOAuth = (header ?? []).filter(([name]) => name !== 'realm');
    if (headerOAuth.length > 0 && elsewhere.length > 0) {
      throw unauthorized('parameter_rejected', 'OAuth parameters were sent both in the Authorization header and in the query or body; send them in one place');
    }
    const source = headerOAuth.length > 0 ? headerOAuth : elsewhere;
    if (source.length === 0) {
      throw unauthorized(
        'parameter_absent',
        'this request needs a two-legged OAuth 1.0a signature (an Authorization: OAuth header, or oauth_* query parameters); only GET /imagefactory is open',
      );
    }
    const protocol = new Map<string, string>();
    for (const [name, value] of source) {
      if (protocol.has(name)) throw unauthorized('parameter_rejected', `the OAuth parameter ${name} was given more than once`);
      protocol.set(name, value);
    }
    return { protocol, all: [...query, ...form, ...headerOAuth] };
  }
}
