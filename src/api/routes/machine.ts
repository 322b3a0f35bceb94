import { locateImage } from '../locate.js';
import { IMAGE_LOCATIONS } from '../paths.js';
import { sendJson } from '../respond.js';
import type { RouteDef } from '../route.js';

/** `GET …/:id/machine`: the build machine's definition and current state, for drawing. */
export function machineRoutes(): RouteDef[] {
  return IMAGE_LOCATIONS.map(({ kind, path }): RouteDef => ({
    method: 'GET',
    path: `${path}/machine`,
    produces: 'application/json',
    handle: (req, res, ctx) => {
      const image = locateImage(ctx.engine, kind, req.params);
      sendJson(res, 200, ctx.engine.machine(image.id));
    },
  }));
}
