import type { OsPlugin } from '../os/plugin.js';

/**
 * OS plugins shipped with the daemon, by plugin id. A `.info` file without a
 * `module` field names one of these; the factory is called once, at discovery.
 */
export const BUILTIN_PLUGINS: Record<string, () => Promise<OsPlugin>> = {};
