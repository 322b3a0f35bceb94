import type { OsPlugin } from '../os/plugin.js';
import type { PluginErrorCode } from './errors.js';
import type { PluginInfo } from './info.js';

/** One `.info` file found by discovery, usable or not. */
export interface PluginEntry {
  /** NAME of `NAME.info`. */
  id: string;
  /** The .info fields as written (`{}` when the file is not a JSON object). */
  info: Record<string, unknown>;
  /** The plugins directory the .info file was found in. */
  dir: string;
  /** Path of the .info file inside `dir`. */
  infoPath: string;
  /** The validated .info, or null when it did not validate. */
  declared: PluginInfo | null;
  /** Why the plugin is unusable; null for a loaded plugin. */
  error: string | null;
  errorCode: PluginErrorCode | null;
  loaded: boolean;
}

/** A loaded plugin's implementation: the OS plugin object, or a cloud module's default export. */
export type LoadedPlugin = { type: 'os'; plugin: OsPlugin } | { type: 'cloud'; plugin: unknown };

export interface PluginRegistry {
  /** Every entry in discovery order (directory order, then file name), broken ones and duplicates included. */
  list(): PluginEntry[];
  /** The entry that owns `id` (the first found), or null. */
  get(id: string): PluginEntry | null;
  /**
   * The loaded OS plugin for (name, version, arch), widening from the right
   * like the original: (name, version, arch), then (name, version, null),
   * then (name, null, null). Exact, case-sensitive strings; the first plugin
   * discovered wins among plugins declaring the same target.
   */
  findOs(name: string, version: string, arch: string): { entry: PluginEntry; plugin: OsPlugin } | null;
  /** The loaded cloud plugin declaring `[target]`, with its module's default export. */
  findCloud(target: string): { entry: PluginEntry; plugin: unknown } | null;
}

export interface RegistryItem {
  entry: PluginEntry;
  /** Present only for loaded entries. */
  loaded: LoadedPlugin | null;
}

function targetKey(parts: readonly (string | null)[]): string {
  return JSON.stringify(parts);
}

/** Builds the registry over discovered items; the first item claiming a target keeps it. */
export function createPluginRegistry(items: RegistryItem[]): PluginRegistry {
  const entries = items.map((item) => item.entry);
  const byId = new Map<string, PluginEntry>();
  const osTargets = new Map<string, { entry: PluginEntry; plugin: OsPlugin }>();
  const cloudTargets = new Map<string, { entry: PluginEntry; plugin: unknown }>();

  for (const { entry, loaded } of items) {
    if (!byId.has(entry.id)) byId.set(entry.id, entry);
    if (loaded === null || entry.declared === null) continue;
    for (const target of entry.declared.targets) {
      const key = targetKey(target);
      if (loaded.type === 'os' && !osTargets.has(key)) osTargets.set(key, { entry, plugin: loaded.plugin });
      if (loaded.type === 'cloud' && !cloudTargets.has(key)) cloudTargets.set(key, { entry, plugin: loaded.plugin });
    }
  }

  return {
    list: () => [...entries],
    get: (id) => byId.get(id) ?? null,
    findOs(name, version, arch) {
      for (const key of [[name, version, arch], [name, version, null], [name, null, null]]) {
        const found = osTargets.get(targetKey(key));
        if (found) return found;
      }
      return null;
    },
    findCloud: (target) => cloudTargets.get(targetKey([target])) ?? null,
  };
}
