import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { pipeline } from 'node:stream';
import { ApiError } from '../errors.js';
import { locateImage } from '../locate.js';
import { IMAGE_LOCATIONS } from '../paths.js';
import { parseRange } from '../range.js';
import type { RouteDef } from '../route.js';

const noBody = (id: string) => new ApiError(404, 'no_body', `image ${id} has no body file yet`);

/** `…/:id/raw_image`: the body file as an attachment, with single byte ranges. */
export function rawImageRoutes(): RouteDef[] {
  return IMAGE_LOCATIONS.map(({ kind, path }): RouteDef => ({
    method: 'GET',
    path: `${path}/raw_image`,
    produces: 'application/octet-stream',
    handle: async (req, res, ctx) => {
      const image = locateImage(ctx.engine, kind, req.params);
      const file = image.bodyPath;
      if (!file) throw noBody(image.id);
      const info = await stat(file).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
        throw e;
      });
      if (!info?.isFile()) throw noBody(image.id);

      const size = info.size;
      const range = parseRange(req.headers.range, size);
      if (range.kind === 'unsatisfiable') {
        throw new ApiError(416, 'range_not_satisfiable', `range "${req.headers.range}" is outside the ${size}-byte body`, { size }, {
          'content-range': `bytes */${size}`,
          'accept-ranges': 'bytes',
        });
      }
      const [start, end] = range.kind === 'partial' ? [range.start, range.end] : [0, size - 1];
      const headers: Record<string, string> = {
        'content-type': 'application/octet-stream',
        'content-disposition': `attachment; filename="${basename(file).replace(/["\\\r\n]/g, '_')}"`,
        'accept-ranges': 'bytes',
        'content-length': String(Math.max(0, end - start + 1)),
        'last-modified': info.mtime.toUTCString(),
        'cache-control': 'no-store',
      };
      if (range.kind === 'partial') headers['content-range'] = `bytes ${start}-${end}/${size}`;
      res.writeHead(range.kind === 'partial' ? 206 : 200, headers);
      if (req.method === 'HEAD' || size === 0) {
        res.end();
        return;
      }
      pipeline(createReadStream(file, { start, end }), res, (err) => {
        // A client going away mid-download is normal; anything else is worth a line.
        if (err && (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') ctx.log(`raw_image ${image.id}: ${err.message}`);
      });
    },
  }));
}
