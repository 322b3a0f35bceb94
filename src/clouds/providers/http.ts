// A small HTTP client on node:http(s) for the REST providers (Keystone, Glance, OCI registries):
// bodies streamed from a file with a known length (no chunked uploads, which some servers refuse),
// upload progress, and an AbortSignal that destroys the request at once. It returns every answer,
// whatever its status: the callers decide what an error is.
import { createReadStream } from 'node:fs';
import { request as httpRequestRaw, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequestRaw } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';

/** A byte range of a file, streamed as the body. */
export interface FileBody {
  file: string;
  start: number;
  length: number;
}

export interface HttpRequest {
  method: string;
  url: string | URL;
  headers?: Record<string, string>;
  body?: Buffer | string | FileBody;
  signal?: AbortSignal;
  /** Called with the body bytes written so far. */
  onUploadProgress?: (bytes: number) => void;
  /** Answers longer than this are cut off with an error; default 16 MiB. */
  maxResponseBytes?: number;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The body as text. */
  text(): string;
  /** The body as JSON (`undefined` if it is not JSON). */
  json(): unknown;
  /** One header as a string (the first, if repeated). */
  header(name: string): string | undefined;
}

const DEFAULT_MAX_RESPONSE = 16 * 1024 * 1024;

export function httpRequest(req: HttpRequest): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    if (req.signal?.aborted) return reject(abortError(req.signal));
    const url = typeof req.url === 'string' ? new URL(req.url) : req.url;
    const headers: Record<string, string> = { ...req.headers };
    const body = req.body;
    const length = body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : Buffer.isBuffer(body) ? body.length : body.length;
    if (body !== undefined || ['PUT', 'POST', 'PATCH'].includes(req.method)) headers['content-length'] = String(length);
    const send = url.protocol === 'https:' ? httpsRequestRaw : httpRequestRaw;
    const request = send(url, { method: req.method, headers });
    const onAbort = () => request.destroy(abortError(req.signal!));
    req.signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => req.signal?.removeEventListener('abort', onAbort);

    request.once('error', (error) => {
      done();
      reject(error);
    });
    request.once('response', (response) => {
      const limit = req.maxResponseBytes ?? DEFAULT_MAX_RESPONSE;
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) {
          response.destroy(new Error(`the answer is longer than ${limit} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.once('error', (error) => {
        done();
        reject(error);
      });
      response.once('end', () => {
        done();
        const bytes = Buffer.concat(chunks);
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: bytes,
          text: () => bytes.toString('utf8'),
          json: () => {
            try {
              return JSON.parse(bytes.toString('utf8')) as unknown;
            } catch {
              return undefined;
            }
          },
          header: (name) => {
            const value = response.headers[name.toLowerCase()];
            return Array.isArray(value) ? value[0] : value;
          },
        });
      });
    });

    if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) {
      if (body !== undefined) req.onUploadProgress?.(0);
      request.end(body);
      if (body !== undefined) req.onUploadProgress?.(length);
      return;
    }
    let sent = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        sent += chunk.length;
        req.onUploadProgress?.(sent);
        callback(null, chunk);
      },
    });
    const source = body.length === 0 ? createReadStream(body.file, { start: 0, end: -1 }) : createReadStream(body.file, { start: body.start, end: body.start + body.length - 1 });
    pipeline(source, counter, request).catch((error: unknown) => request.destroy(error instanceof Error ? error : new Error(String(error))));
  });
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const error = new Error('the request was aborted');
  error.name = 'AbortError';
  return error;
}

/** Joins a base URL and a path without losing the base's own path (`http://h/v3` + `auth/tokens`). */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}
