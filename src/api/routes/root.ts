import { BASE_PATH } from '../paths.js';
import { sendJson } from '../respond.js';
import type { RouteDef } from '../route.js';

/** `GET /imagefactory`: who answers, in the original's shape. */
export function rootRoutes(): RouteDef[] {
  return [
    {
      method: 'GET',
      path: BASE_PATH,
      produces: 'application/json',
      handle: (_req, res, ctx) => sendJson(res, 200, { name: 'imagefactory', version: ctx.engine.version, api_version: '2.0' }),
    },
  ];
}
