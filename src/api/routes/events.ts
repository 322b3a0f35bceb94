import { ApiError } from '../errors.js';
import { BASE_PATH } from '../paths.js';
import { requestBaseUrl } from '../present.js';
import { queryParam, type RouteDef } from '../route.js';
import { eventData, formatComment, formatEvent } from '../sse.js';
import { admitStream, writeOrDrop } from '../streams.js';

/**
 * `GET /imagefactory/events`: Server-Sent Events, one per transition,
 * progress change or deletion of any build (`?id=` narrows to one image),
 * with a heartbeat comment so proxies keep the connection open.
 */
export function eventRoutes(): RouteDef[] {
  return [
    {
      method: 'GET',
      path: `${BASE_PATH}/events`,
      produces: 'text/event-stream',
      handle: (req, res, ctx) => {
        const only = queryParam(req, 'id') || undefined;
        if (only !== undefined && !ctx.engine.getImage(only)) throw new ApiError(404, 'image_not_found', `no image with id ${only}`);
        if (req.method !== 'HEAD') admitStream(ctx, req, res);
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
        });
        if (req.method === 'HEAD') {
          res.end();
          return;
        }
        const baseUrl = requestBaseUrl(req);
        const write = (text: string) => writeOrDrop(res, text, ctx.log, 'events');
        write(formatComment(only ? `events of image ${only}` : 'events of every image'));
        let counter = 0;
        const unsubscribe = ctx.engine.subscribe((event) => {
          if (only !== undefined && event.image.id !== only) return;
          try {
            write(formatEvent(++counter, event.type, eventData(event, baseUrl)));
          } catch (e) {
            ctx.log(`events: could not send an event: ${(e as Error).message}`);
          }
        });
        const heartbeat = setInterval(() => write(formatComment('heartbeat')), ctx.heartbeatMs);
        res.on('close', () => {
          unsubscribe();
          clearInterval(heartbeat);
        });
      },
    },
  ];
}
