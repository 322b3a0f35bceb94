import type { PluginEntry } from './registry.js';

/** A plugin as `GET /imagefactory/plugins[/:id]` shows it: the .info fields plus `_type`, `id`, `href`, and `error` when broken. */
export type ApiPlugin = Record<string, unknown> & { _type: 'plugin'; id: string; href: string; error?: string };

/** `baseHref` is the server's origin, e.g. `http://localhost:8075`; a trailing slash is ignored. */
export function toApiPlugin(entry: PluginEntry, baseHref: string): ApiPlugin {
  const plugin: ApiPlugin = {
    ...entry.info,
    _type: 'plugin',
    id: entry.id,
    href: `${baseHref.replace(/\/+$/, '')}/imagefactory/plugins/${encodeURIComponent(entry.id)}`,
  };
  // Our fields win over same-named .info fields; `error` is ours only when the plugin is broken.
  delete plugin.error;
  if (entry.error !== null) plugin.error = entry.error;
  return plugin;
}
