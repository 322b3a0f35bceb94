import http from 'node:http';
import https from 'node:https';
import { signRequest, type Consumer } from '../../api/auth/sign.js';
import type { SignatureMethod } from '../../api/auth/signature-base.js';
import { pinnedTlsOptions, type PinnedCertificate } from './trust.js';

/**
 * A small JSON client of the daemon's REST API on node:http(s), so that TLS
 * trust (`--ca`, `--insecure`) can be given per agent. Every failure becomes a
 * `ClientError`: the server's `{"error":{code,message,details}}` when it
 * answered, code `unreachable` when it could not be reached at all.
 */

export class ClientError extends Error {
  constructor(
    /** The server's error code (`image_not_found`, `conflict`…), `unreachable`, or `bad_response`. */
    readonly code: string,
    message: string,
    /** The HTTP status, when the server answered. */
    readonly status?: number,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

export interface ClientOptions {
  /** The daemon's base URL, without the `/imagefactory` prefix: `http://127.0.0.1:8075`. */
  url: string;
  /** PEM certificate(s) to trust for https URLs, instead of the system's. */
  ca?: string;
  /** Accept any certificate (https only). */
  insecure?: boolean;
  /** The local daemon's transient certificate, trusted (pinned) besides the system's authorities when no `ca` is given. */
  pin?: PinnedCertificate;
  /** Where the client looked for that certificate, for the hint when verification fails. */
  pinLookedUp?: string;
  /** Signs every request with two-legged OAuth 1.0a. */
  consumer?: Consumer;
  signatureMethod?: SignatureMethod;
  /** Time limit of one ordinary request; event streams have none. */
  timeoutMs?: number;
}

export interface JsonAnswer<T> {
  status: number;
  body: T;
}

const TLS_ERROR = /CERT|TLS|SSL|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME|ALTNAME/i;

export class Client {
  readonly url: string;
  private readonly agent: http.Agent;
  private readonly timeoutMs: number;
  private readonly secure: boolean;
  private readonly consumer: Consumer | undefined;
  private readonly signatureMethod: SignatureMethod;
  private readonly tlsHint: string;

  constructor(opts: ClientOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.secure = this.url.startsWith('https:');
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.consumer = opts.consumer;
    this.signatureMethod = opts.signatureMethod ?? 'HMAC-SHA1';
    const trust = opts.ca !== undefined ? { ca: opts.ca } : opts.pin ? pinnedTlsOptions(opts.pin) : {};
    this.agent = this.secure ? new https.Agent({ keepAlive: true, ...trust, rejectUnauthorized: !opts.insecure }) : new http.Agent({ keepAlive: true });
    const where = opts.pin ? `; the certificate pinned from ${opts.pin.file} is not the daemon's` : opts.pinLookedUp ? `; no daemon certificate in ${opts.pinLookedUp}` : '';
    this.tlsHint = ` (trust its certificate with --ca FILE, or skip the check with --insecure${where})`;
  }

  /** A JSON request; resolves with a 2xx answer, rejects with a `ClientError` otherwise. */
  async json<T = unknown>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<JsonAnswer<T>> {
    const res = await this.send(method, path, { accept: 'application/json' }, body, this.timeoutMs);
    const text = await readAll(res);
    const status = res.statusCode ?? 0;
    if (status >= 400) throw this.explained(errorFromAnswer(status, res.statusMessage, text));
    if (status === 204 || text.trim() === '') return { status, body: undefined as T };
    try {
      return { status, body: JSON.parse(text) as T };
    } catch {
      throw new ClientError('bad_response', `${method} ${path} answered ${status} with something that is not JSON; is ${this.url} an imagefactory daemon?`, status);
    }
  }

  /** Opens a long-lived response (the event stream); rejects unless the server answers 200. */
  async stream(path: string, accept: string): Promise<http.IncomingMessage> {
    const res = await this.send('GET', path, { accept }, undefined, 0);
    const status = res.statusCode ?? 0;
    if (status !== 200) throw this.explained(errorFromAnswer(status, res.statusMessage, await readAll(res)));
    return res;
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  private send(method: string, path: string, headers: Record<string, string>, body: unknown, timeoutMs: number): Promise<http.IncomingMessage> {
    const target = new URL(this.url + path);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const all: Record<string, string> = { ...headers };
    // JSON bodies are not covered by an OAuth 1.0a signature; the method, URL and query are.
    if (this.consumer) all.authorization = signRequest({ method, url: target.href, consumer: this.consumer, signatureMethod: this.signatureMethod }).header;
    // A template that does not validate is refused at once (400) rather than answered with an image FAILED at once, as the original's clients expect.
    if (method === 'POST') all.prefer = 'handling=strict';
    if (payload) {
      all['content-type'] = 'application/json';
      all['content-length'] = String(payload.length);
    }
    const request = this.secure ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = request(target, { method, headers: all, agent: this.agent }, resolve);
      req.on('error', (e) => reject(this.unreachable(e)));
      if (timeoutMs > 0) {
        req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`), { code: 'ETIMEDOUT' })));
      }
      req.end(payload);
    });
  }

  /** A 401 says what to do about it. */
  private explained(e: ClientError): ClientError {
    if (e.status !== 401) return e;
    const hint = this.consumer
      ? ` (signed as consumer ${this.consumer.key}; check the key and secret, and this machine's clock)`
      : ' (the daemon requires two-legged OAuth: give --key and --secret, $IMAGEFACTORY_KEY and $IMAGEFACTORY_SECRET, or "key" and "secret" in the client configuration)';
    return new ClientError(e.code, e.message + hint, e.status, e.details);
  }

  private unreachable(e: Error & { code?: string }): ClientError {
    if (e instanceof ClientError) return e;
    const tls = TLS_ERROR.test(`${e.code ?? ''} ${e.message}`);
    const hint = tls ? this.tlsHint : '';
    return new ClientError('unreachable', `cannot reach the imagefactory daemon at ${this.url}: ${e.message}${hint}`);
  }
}

function readAll(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (text += chunk));
    res.on('end', () => resolve(text));
    res.on('error', reject);
  });
}

function errorFromAnswer(status: number, statusMessage: string | undefined, text: string): ClientError {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
    const err = parsed.error;
    if (err && typeof err.code === 'string' && typeof err.message === 'string') return new ClientError(err.code, err.message, status, err.details);
  } catch {
    // not the daemon's JSON error envelope: fall through
  }
  return new ClientError(`http_${status}`, `HTTP ${status} ${statusMessage ?? ''}`.trim(), status);
}
