import type { RouteDef } from '../route.js';
import { cancelRoutes } from './cancel.js';
import { collectionRoutes } from './collections.js';
import { eventRoutes } from './events.js';
import { imageRoutes } from './image.js';
import { inspectorRoutes } from './inspector.js';
import { logRoutes } from './log.js';
import { machineRoutes } from './machine.js';
import { metricsRoutes } from './metrics.js';
import { openApiRoutes } from './openapi.js';
import { pluginRoutes } from './plugins.js';
import { rawImageRoutes } from './raw-image.js';
import { rootRoutes } from './root.js';
import { transitionRoutes } from './transitions.js';

/** Every route of the REST API, in registration order. */
export function allRoutes(): RouteDef[] {
  return [
    ...rootRoutes(),
    ...openApiRoutes(),
    ...pluginRoutes(),
    ...eventRoutes(),
    ...collectionRoutes(),
    ...imageRoutes(),
    ...rawImageRoutes(),
    ...cancelRoutes(),
    ...transitionRoutes(),
    ...machineRoutes(),
    ...logRoutes(),
    ...inspectorRoutes(),
    ...metricsRoutes(),
  ];
}
