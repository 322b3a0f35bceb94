import type { OsPlugin } from '../os/plugin.js';
import type { PackageCache } from '../os/debian/package-cache.js';

/** Settings the shipped plugins take from the daemon's configuration. */
export interface BuiltinOptions {
  /** The .deb directory shared by Debian/Ubuntu builds and its bound, or null for none. */
  packageCache?: PackageCache | null;
}

/**
 * OS plugins shipped with the daemon, by plugin id. A `.info` file without a
 * `module` field names one of these; the factory is called once, at discovery.
 */
export function builtinPlugins(options: BuiltinOptions = {}): Record<string, () => Promise<OsPlugin>> {
  const debian = async () => (await import('../os/debian/plugin.js')).createDebianPlugin({ packageCache: options.packageCache ?? null });
  return { Debian: debian, Ubuntu: debian };
}

export const BUILTIN_PLUGINS = builtinPlugins();
