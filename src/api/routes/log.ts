import { createReadStream, statSync, type ReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import type { Request } from 'polka';
import type { ImageRecord } from '../../model/index.js';
import { locateImage } from '../locate.js';
import { IMAGE_LOCATIONS } from '../paths.js';
import { queryFlag, type RouteContext, type RouteDef } from '../route.js';
import { admitStream, isFinal, writeOrDrop } from '../streams.js';

const TEXT_HEADERS = {
  'content-type': 'text/plain; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

/** `GET …/:id/log`: the build log as text; `?follow=1` keeps streaming until the build is final. */
export function logRoutes(): RouteDef[] {
  return IMAGE_LOCATIONS.map(({ kind, path }): RouteDef => ({
    method: 'GET',
    path: `${path}/log`,
    produces: 'text/plain',
    handle: (req, res, ctx) => {
      const image = locateImage(ctx.engine, kind, req.params);
      const file = ctx.engine.logPath(image.id);
      if (queryFlag(req, 'follow') && !isFinal(image.status)) followLog(req, res, ctx, image, file);
      else return sendLog(req, res, ctx, image, file);
    },
  }));
}

/** The log as it is now; a build without a log yet has an empty one. */
async function sendLog(req: Request, res: ServerResponse, ctx: RouteContext, image: ImageRecord, file: string | null): Promise<void> {
  const info = file ? await stat(file).catch(() => null) : null;
  // The length is fixed at the size seen now; text appended meanwhile is for the next request.
  const size = info?.isFile() ? info.size : 0;
  res.writeHead(200, { ...TEXT_HEADERS, 'content-length': String(size) });
  if (size === 0 || req.method === 'HEAD' || !file) {
    res.end();
    return;
  }
  pipeline(createReadStream(file, { start: 0, end: size - 1 }), res, (err) => {
    if (err && (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') ctx.log(`log ${image.id}: ${err.message}`);
  });
}

/**
 * The log so far, then every new chunk as the engine writes it, until the
 * build reaches a final status, the image is deleted or the client leaves.
 * `engine.followLog` reports only text written after the call, so the file's
 * size is taken in the same tick: the bytes before it are replayed from the
 * file, the chunks after it are queued until the replay is done.
 */
function followLog(req: Request, res: ServerResponse, ctx: RouteContext, image: ImageRecord, file: string | null): void {
  if (req.method !== 'HEAD') admitStream(ctx, req, res);
  res.writeHead(200, { ...TEXT_HEADERS, 'x-accel-buffering': 'no' });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  res.flushHeaders();
  const what = `log ${image.id}`;
  const write = (chunk: string | Buffer) => writeOrDrop(res, chunk, ctx.log, what);
  const queued: string[] = [];
  let replaying = true;
  let finalSeen = false;
  let replay: ReadStream | null = null;

  const stopLog = ctx.engine.followLog(image.id, (text) => {
    if (replaying) queued.push(text);
    else write(text);
  });
  const size = file ? sizeOf(file) : 0;
  const stopEvents = ctx.engine.subscribe((event) => {
    if (event.image.id !== image.id || !(event.type === 'deleted' || isFinal(event.image.status))) return;
    finalSeen = true;
    // Let chunks written in the same turn as the final transition arrive first.
    if (!replaying) setImmediate(finish);
  });

  let cleaned = false;
  function cleanup(): void {
    if (cleaned) return;
    cleaned = true;
    stopLog();
    stopEvents();
    replay?.destroy();
  }
  function finish(): void {
    cleanup();
    if (!res.writableEnded) res.end();
  }
  function replayDone(): void {
    replaying = false;
    replay = null;
    for (const text of queued.splice(0)) write(text);
    if (finalSeen) setImmediate(finish);
  }
  res.on('close', cleanup);

  if (size === 0 || !file) {
    replayDone();
    return;
  }
  const stream = (replay = createReadStream(file, { start: 0, end: size - 1 }));
  // The replay follows the client's pace; only live chunks count against the buffer cap.
  stream.on('data', (chunk) => {
    if (!res.write(chunk)) {
      stream.pause();
      res.once('drain', () => stream.resume());
    }
  });
  stream.on('end', replayDone);
  stream.on('error', (err) => {
    ctx.log(`${what}: ${err.message}`);
    replayDone();
  });
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
