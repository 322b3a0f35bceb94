import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors.js';

export type ParsedBody =
  | { format: 'none' }
  | { format: 'json'; value: unknown }
  | { format: 'form'; value: Record<string, string>; /** Every field in order, repeats kept. */ pairs: [string, string][] };

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** `application/json`, `application/*+json` and `application/x-www-form-urlencoded`; anything else is 415. */
function bodyFormat(contentType: string | undefined): 'json' | 'form' | null {
  const media = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (media === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(media)) return 'json';
  if (media === 'application/x-www-form-urlencoded') return 'form';
  return null;
}

const tooLarge = (limit: number, drained: boolean) =>
  new ApiError(413, 'body_too_large', `request body exceeds ${limit} bytes`, { limit }, drained ? {} : { connection: 'close' });

/**
 * How much of a refused body is read and thrown away before answering: a
 * client still sending would otherwise see its connection reset instead of
 * the 413. Beyond this the answer goes out at once and the connection closes.
 */
const DISCARD_CAP = 16 * 1024 * 1024;

const DISCARD_IDLE_MS = 1000;

/**
 * Reads the rest of a refused body into nothing; resolves true once it
 * ended, false when it passed the cap or stalled (then the 413 goes out and
 * the connection closes).
 */
function discardRest(req: IncomingMessage, alreadyRead = 0): Promise<boolean> {
  return new Promise((resolve) => {
    let discarded = alreadyRead;
    let idle: NodeJS.Timeout;
    const done = (drained: boolean) => {
      clearTimeout(idle);
      req.off('data', onData);
      if (!drained) req.pause();
      resolve(drained);
    };
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => done(false), DISCARD_IDLE_MS);
    };
    const onData = (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > DISCARD_CAP) done(false);
      else arm();
    };
    req.on('data', onData);
    req.once('end', () => done(true));
    req.once('close', () => done(req.complete));
    arm();
    req.resume();
  });
}

/** Bodies already read (a form body is read before routing, its fields being signed by OAuth). */
const alreadyRead = new WeakMap<IncomingMessage, Promise<ParsedBody>>();

/**
 * Reads and parses a request body without ever holding more than `limit`
 * bytes: a declared Content-Length over the limit is refused before reading,
 * and a body that streams past it stops being read at once. Reading twice
 * gives the same result.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<ParsedBody> {
  let body = alreadyRead.get(req);
  if (!body) {
    body = readBodyOnce(req, limit);
    alreadyRead.set(req, body);
  }
  return body;
}

/** Whether the request has a body that nobody has read (refusing it early should close the connection). */
export function hasUnreadBody(req: IncomingMessage): boolean {
  if (alreadyRead.has(req) || req.readableEnded) return false;
  const declared = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (declared !== undefined && declared !== '0');
}

/** Whether the request declares an application/x-www-form-urlencoded body (whose fields OAuth signs). */
export function isFormBody(req: IncomingMessage): boolean {
  return bodyFormat(req.headers['content-type']) === 'form';
}

async function readBodyOnce(req: IncomingMessage, limit: number): Promise<ParsedBody> {
  const declared = req.headers['content-length'];
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if ((declared === undefined || declared === '0') && !chunked) return { format: 'none' };
  if (req.readableEnded) return { format: 'none' };
  if (declared !== undefined && Number(declared) > limit) {
    throw tooLarge(limit, Number(declared) <= DISCARD_CAP && (await discardRest(req)));
  }
  const format = bodyFormat(req.headers['content-type']);
  if (!format) {
    throw new ApiError(415, 'unsupported_media_type', `request bodies must be application/json or application/x-www-form-urlencoded, not "${req.headers['content-type'] ?? '(none)'}"`, undefined, {
      connection: 'close',
    });
  }
  const raw = await readLimited(req, limit);
  if (raw.length === 0) return { format: 'none' };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(raw);
  } catch {
    throw new ApiError(400, format === 'json' ? 'bad_json' : 'bad_request', 'request body is not valid UTF-8');
  }
  if (format === 'form') return { format, value: Object.fromEntries(new URLSearchParams(text)), pairs: [...new URLSearchParams(text)] };
  try {
    return { format, value: JSON.parse(text) as unknown };
  } catch (e) {
    throw new ApiError(400, 'bad_json', `request body is not valid JSON: ${(e as Error).message}`);
  }
}

function readLimited(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err: Error | null) => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
        void discardRest(req, size).then((drained) => reject(tooLarge(limit, drained)));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(null);
    const onError = (e: Error) => finish(new ApiError(400, 'bad_request', `request body could not be read: ${e.message}`));
    const onClose = () => {
      if (!req.complete) finish(new ApiError(400, 'bad_request', 'request body was cut short'));
    };
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}
