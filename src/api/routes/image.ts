import { readBody } from '../body.js';
import { locateImage } from '../locate.js';
import { IMAGE_LOCATIONS } from '../paths.js';
import { presentImage, requestBaseUrl, wrapImage } from '../present.js';
import { relationsOf } from '../relations.js';
import { deleteOptions } from '../requests.js';
import { sendJson, sendNoContent } from '../respond.js';
import { queryParams, type RouteDef } from '../route.js';

/** One image: its detail and its deletion, under every path that names it. */
export function imageRoutes(): RouteDef[] {
  return IMAGE_LOCATIONS.flatMap(({ kind, path }): RouteDef[] => [
    {
      method: 'GET',
      path,
      produces: 'application/json',
      handle: (req, res, ctx) => {
        const image = locateImage(ctx.engine, kind, req.params);
        const baseUrl = requestBaseUrl(req);
        sendJson(res, 200, wrapImage(image, { ...presentImage(image, baseUrl), ...relationsOf(ctx.engine, image, baseUrl) }));
      },
    },
    {
      method: 'DELETE',
      path,
      produces: 'application/json',
      handle: async (req, res, ctx) => {
        const image = locateImage(ctx.engine, kind, req.params);
        const opts = deleteOptions(await readBody(req, ctx.maxBodyBytes), queryParams(req));
        // Only a provider image has anything to remove from a provider.
        ctx.engine.deleteImage(image.id, kind === 'ProviderImage' ? opts : opts.cascade === undefined ? {} : { cascade: opts.cascade });
        sendNoContent(res);
      },
    },
  ]);
}
