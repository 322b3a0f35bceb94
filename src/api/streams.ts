import type { IncomingMessage, ServerResponse } from 'node:http';
import { FINAL_STATUSES, type ImageStatus } from '../model/index.js';
import { ApiError } from './errors.js';
import type { RouteContext } from './route.js';

/** A slow reader is cut off rather than buffered without bound. */
export const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/** Writes to a long-lived response; drops the connection of a client that stopped reading. */
export function writeOrDrop(res: ServerResponse, chunk: string | Buffer, log: (line: string) => void, what: string): void {
  if (res.destroyed || res.writableEnded) return;
  res.write(chunk);
  if (res.writableLength > MAX_BUFFERED_BYTES) {
    log(`${what}: client is not reading (${res.writableLength} bytes buffered); closing`);
    res.destroy();
  }
}

export function isFinal(status: ImageStatus): boolean {
  return FINAL_STATUSES.includes(status);
}

/** How many long-lived responses (event streams, followed logs) may be open: in all, and from one client address. */
export const STREAM_LIMITS = { total: 256, perClient: 16 };

const clientOf = new WeakMap<ServerResponse, string>();

/**
 * Admits a new long-lived response, or refuses it with 503 `too_many_streams`
 * (and a Retry-After) when the client, or everyone together, holds as many as
 * allowed: each open stream holds a socket, a subscription and buffers, and
 * nothing else would bound them. Registers the response so that closing the
 * server ends it and its slot is freed when it closes.
 */
export function admitStream(ctx: RouteContext, req: IncomingMessage, res: ServerResponse): void {
  const total = ctx.maxStreams ?? STREAM_LIMITS.total;
  const perClient = ctx.maxStreamsPerClient ?? STREAM_LIMITS.perClient;
  const client = req.socket.remoteAddress ?? 'unknown';
  const retry = { 'retry-after': '10' };
  if (ctx.streams.size >= total) {
    throw new ApiError(503, 'too_many_streams', `the server holds ${total} event and log streams already; try again later`, { scope: 'total', limit: total }, retry);
  }
  let mine = 0;
  for (const open of ctx.streams) if (clientOf.get(open) === client) mine++;
  if (mine >= perClient) {
    throw new ApiError(503, 'too_many_streams', `this client holds ${perClient} event and log streams already; close one first`, { scope: 'client', limit: perClient }, retry);
  }
  clientOf.set(res, client);
  ctx.streams.add(res);
  res.on('close', () => ctx.streams.delete(res));
}
