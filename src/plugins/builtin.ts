import type { OsPlugin } from '../os/plugin.js';

/** Settings the shipped plugins take from the daemon's configuration. */
export interface BuiltinOptions {
  /** Directory of .deb files shared by Debian/Ubuntu builds, or null for none. */
  packageCache?: string | null;
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
