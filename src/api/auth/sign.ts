import { createHmac, randomBytes } from 'node:crypto';
import { authorizationHeader, queryParams, signatureBaseString, signingKey, type Param, type SignatureMethod } from './signature-base.js';

/** HMAC of the base string with the signing key, base64 (RFC 5849 §3.4.2; SHA-256 as its common extension). */
export function hmacSignature(method: SignatureMethod, baseString: string, key: string): string {
  return createHmac(method === 'HMAC-SHA256' ? 'sha256' : 'sha1', key).update(baseString).digest('base64');
}

export interface Consumer {
  key: string;
  secret: string;
}

export interface SignOptions {
  method: string;
  /** The absolute URL, query included. */
  url: string;
  consumer: Consumer;
  signatureMethod?: SignatureMethod;
  /** Decoded fields of an application/x-www-form-urlencoded body (they are signed too); JSON bodies are not. */
  form?: readonly Param[];
  /** Fixed for tests; otherwise now and 16 random bytes. */
  timestamp?: number;
  nonce?: string;
}

export interface Signed {
  /** The `Authorization` header value. */
  header: string;
  /** The protocol parameters, `oauth_signature` included, for the query form (SSE, browsers). */
  params: Param[];
}

/** Signs a request as a two-legged OAuth 1.0a consumer (no token). */
export function signRequest(opts: SignOptions): Signed {
  const url = new URL(opts.url);
  const signatureMethod = opts.signatureMethod ?? 'HMAC-SHA1';
  const protocol: Param[] = [
    ['oauth_consumer_key', opts.consumer.key],
    ['oauth_nonce', opts.nonce ?? randomBytes(16).toString('hex')],
    ['oauth_signature_method', signatureMethod],
    ['oauth_timestamp', String(opts.timestamp ?? Math.floor(Date.now() / 1000))],
    ['oauth_version', '1.0'],
  ];
  const base = signatureBaseString(opts.method, url, [...queryParams(url), ...(opts.form ?? []), ...protocol]);
  const signature = hmacSignature(signatureMethod, base, signingKey(opts.consumer.secret));
  const params: Param[] = [...protocol, ['oauth_signature', signature]];
  return { header: authorizationHeader(params), params };
}
