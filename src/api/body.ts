import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors.js';

export type ParsedBody =
  | { format: 'none' }
  | { format: 'json'; value: unknown }
  | { format: 'form'; value: Record<string, string> };

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** `application/json`, `application/*+json` and `application/x-www-form-urlencoded`; anything else is 415. */
function bodyFormat(contentType: string | undefined): 'json' | 'form' | null {
  const media = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (media === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(media)) return 'json';
  if (media === 'application/x-www-form-urlencoded') return 'form';
  return null;
}

const tooLarge = (limit: number) =>
  // `connection: close`: the rest of the body is not kept, so the connection cannot be reused.
  new ApiError(413, 'body_too_large', `request body exceeds ${limit} bytes`, { limit }, { connection: 'close' });

/** How much of a refused body is read and thrown away so that the client, still sending, gets to read the 413. */
const DISCARD_CAP = 16 * 1024 * 1024;

/** Reads the rest of a refused body into nothing, up to a cap; past it the connection is cut. */
function discardRest(req: IncomingMessage): void {
  let discarded = 0;
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > DISCARD_CAP) req.socket.destroy();
  });
  req.resume();
}

/**
 * Reads and parses a request body without ever holding more than `limit`
 * bytes: a declared Content-Length over the limit is refused before reading,
 * and a body that streams past it stops being read at once.
 */
export async function readBody(req: IncomingMessage, limit: number): Promise<ParsedBody> {
  const declared = req.headers['content-length'];
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if ((declared === undefined || declared === '0') && !chunked) return { format: 'none' };
  if (req.readableEnded) return { format: 'none' };
  if (declared !== undefined && Number(declared) > limit) {
    if (Number(declared) <= DISCARD_CAP) discardRest(req);
    throw tooLarge(limit);
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
  if (format === 'form') return { format, value: Object.fromEntries(new URLSearchParams(text)) };
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
        finish(tooLarge(limit));
        discardRest(req);
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
