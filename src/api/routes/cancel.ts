import { locateImage } from '../locate.js';
import { IMAGE_LOCATIONS } from '../paths.js';
import { presentImage, requestBaseUrl, wrapImage } from '../present.js';
import { sendJson } from '../respond.js';
import type { RouteDef } from '../route.js';

/** `POST …/:id/cancel`: 202 once the engine has accepted the request; the build stops on its own time. */
export function cancelRoutes(): RouteDef[] {
  return IMAGE_LOCATIONS.map(({ kind, path }): RouteDef => ({
    method: 'POST',
    path: `${path}/cancel`,
    produces: 'application/json',
    handle: (req, res, ctx) => {
      const image = locateImage(ctx.engine, kind, req.params);
      ctx.engine.cancel(image.id);
      const now = ctx.engine.getImage(image.id) ?? image;
      sendJson(res, 202, wrapImage(now, presentImage(now, requestBaseUrl(req))));
    },
  }));
}
