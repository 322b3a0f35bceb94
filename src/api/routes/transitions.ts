import { locateImage } from '../locate.js';
import { IMAGE_LOCATIONS } from '../paths.js';
import { presentTransition } from '../present.js';
import { sendJson } from '../respond.js';
import type { RouteDef } from '../route.js';

/** `GET …/:id/transitions`: every state change of the build machine, oldest first. */
export function transitionRoutes(): RouteDef[] {
  return IMAGE_LOCATIONS.map(({ kind, path }): RouteDef => ({
    method: 'GET',
    path: `${path}/transitions`,
    produces: 'application/json',
    handle: (req, res, ctx) => {
      const image = locateImage(ctx.engine, kind, req.params);
      const list = [...ctx.engine.transitions(image.id)].sort((a, b) => a.seq - b.seq);
      sendJson(res, 200, list.map(presentTransition));
    },
  }));
}
