import { INSPECTOR_ASSETS, sendAsset } from '../inspector/assets.js';
import type { RouteDef } from '../route.js';

/** `GET /inspector` and its assets: a page that draws every build machine live, served with no external origin. */
export function inspectorRoutes(): RouteDef[] {
  return INSPECTOR_ASSETS.map(
    (asset): RouteDef => ({
      method: 'GET',
      path: asset.path,
      produces: asset.produces,
      handle: (req, res) => sendAsset(req, res, asset),
    }),
  );
}
