import { ApiError } from '../errors.js';
import { BASE_PATH } from '../paths.js';
import { requestBaseUrl } from '../present.js';
import { sendJson } from '../respond.js';
import type { RouteDef } from '../route.js';

/** `GET /imagefactory/plugins[/:id]`: each plugin's `.info` fields plus `_type`, `id`, `href`. */
export function pluginRoutes(): RouteDef[] {
  return [
    {
      method: 'GET',
      path: `${BASE_PATH}/plugins`,
      produces: 'application/json',
      handle: (req, res, ctx) => {
        const baseUrl = requestBaseUrl(req);
        sendJson(res, 200, { plugins: ctx.engine.plugins().map((p) => presentPlugin(p, baseUrl)) });
      },
    },
    {
      method: 'GET',
      path: `${BASE_PATH}/plugins/:plugin_id`,
      produces: 'application/json',
      handle: (req, res, ctx) => {
        const id = req.params.plugin_id;
        const plugin = ctx.engine.plugins().find((p) => String(p.id) === id);
        if (!plugin) throw new ApiError(404, 'plugin_not_found', `no plugin with id ${id}`);
        sendJson(res, 200, { plugin: presentPlugin(plugin, requestBaseUrl(req)) });
      },
    },
  ];
}

function presentPlugin(plugin: Record<string, unknown>, baseUrl: string): Record<string, unknown> {
  const id = String(plugin.id);
  return { ...plugin, _type: 'plugin', id, href: `${baseUrl}${BASE_PATH}/plugins/${encodeURIComponent(id)}` };
}
