import type { OsPlugin } from '../os/plugin.js';
import type { PackageCache } from '../os/debian/package-cache.js';
import type { ContentFetchOptions } from '../os/content-fetch.js';
import type { TreeCacheOptions } from '../os/debian/tree-cache.js';

/** Settings the shipped plugins take from the daemon's configuration. */
export interface BuiltinOptions {
  /** The .deb directory shared by Debian/Ubuntu builds and its bound, or null for none. */
  packageCache?: PackageCache | null;
  /** Bootstrapped root trees kept between builds, or null for none. */
  treeCache?: TreeCacheOptions | null;
  /** Limits of fetching template url contents and the allowed file: directories (`contentFetchOptions(config)`). */
  contentFetch?: ContentFetchOptions;
}

/**
 * OS plugins shipped with the daemon, by plugin id. A `.info` file without a
 * `module` field names one of these; the factory is called once, at discovery.
 */
export function builtinPlugins(options: BuiltinOptions = {}): Record<string, () => Promise<OsPlugin>> {
  const debian = async () => {
    const { createDebianPlugin } = await import('../os/debian/plugin.js');
    const { TreeCache } = await import('../os/debian/tree-cache.js');
    return createDebianPlugin({
      packageCache: options.packageCache ?? null,
      treeCache: options.treeCache ? new TreeCache(options.treeCache) : null,
      ...(options.contentFetch ? { contentFetch: options.contentFetch } : {}),
    });
  };
  return { Debian: debian, Ubuntu: debian };
}

export const BUILTIN_PLUGINS = builtinPlugins();
