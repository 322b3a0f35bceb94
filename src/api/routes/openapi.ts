import { OPENAPI } from '../openapi.js';
import { BASE_PATH } from '../paths.js';
import { sendJson } from '../respond.js';
import type { RouteDef } from '../route.js';

export function openApiRoutes(): RouteDef[] {
  return [
    {
      method: 'GET',
      path: `${BASE_PATH}/openapi.json`,
      produces: 'application/json',
      handle: (_req, res) => sendJson(res, 200, OPENAPI),
    },
  ];
}
