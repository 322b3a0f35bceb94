import { ApiError } from '../errors.js';
import type { RouteDef } from '../route.js';

export const METRICS_PATH = '/metrics';

/** `GET /metrics`: the Prometheus text format, behind OAuth like every other route. */
export function metricsRoutes(): RouteDef[] {
  return [
    {
      method: 'GET',
      path: METRICS_PATH,
      produces: 'text/plain',
      handle: async (req, res, ctx) => {
        if (!ctx.metrics) throw new ApiError(404, 'metrics_unavailable', 'this server collects no metrics');
        const text = await ctx.metrics.text();
        res.writeHead(200, { 'content-type': ctx.metrics.contentType, 'content-length': String(Buffer.byteLength(text)), 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
    },
  ];
}
