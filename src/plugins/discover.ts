import { readdir, readFile, realpath } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { OsPlugin } from '../os/plugin.js';
import { BUILTIN_PLUGINS } from './builtin.js';
import { BUILTIN_CLOUD_PLUGINS, cloudPluginProblem } from '../clouds/builtin.js';
import type { CloudPlugin } from '../clouds/types.js';
import { PluginError, thrownMessage } from './errors.js';
import { parsePluginInfo, type PluginInfo } from './info.js';
import { callFactory, importDefaultExport, loadOsModule } from './load.js';
import { createPluginRegistry, type LoadedPlugin, type PluginEntry, type PluginRegistry, type RegistryItem } from './registry.js';

const INFO_SUFFIX = '.info';

export interface DiscoverOptions {
  /** Built-in OS plugins by id; defaults to `BUILTIN_PLUGINS`. */
  builtins?: Record<string, () => Promise<OsPlugin>>;
  /** Built-in cloud plugins by id; defaults to `BUILTIN_CLOUD_PLUGINS` (src/clouds/builtin.ts). */
  cloudBuiltins?: Record<string, () => Promise<CloudPlugin>>;
}

/**
 * Reads every `NAME.info` in `dirs`, validates it and loads its module. A
 * missing directory holds no plugins; an id already found in an earlier
 * directory is not replaced, the later one is listed as a broken duplicate.
 * A broken plugin never throws: it is listed with its error and never matches.
 */
export async function discoverPlugins(dirs: string[], options: DiscoverOptions = {}): Promise<PluginRegistry> {
  const builtins = options.builtins ?? BUILTIN_PLUGINS;
  const cloudBuiltins = options.cloudBuiltins ?? BUILTIN_CLOUD_PLUGINS;
  const items: RegistryItem[] = [];
  const firstDirOf = new Map<string, string>();

  for (const given of dirs) {
    const dir = resolve(given);
    for (const file of await listInfoFiles(dir)) {
      const id = file.slice(0, -INFO_SUFFIX.length);
      const infoPath = join(dir, file);
      const earlier = firstDirOf.get(id);
      if (earlier !== undefined) {
        const info = await readRawInfo(infoPath);
        const error = new PluginError('duplicate_id', `duplicate plugin id "${id}": already declared in ${earlier}`);
        items.push({ entry: brokenEntry(id, dir, infoPath, info, null, error), loaded: null });
        continue;
      }
      firstDirOf.set(id, dir);
      items.push(await loadPlugin(id, dir, infoPath, builtins, cloudBuiltins));
    }
  }
  return createPluginRegistry(items);
}

/** Names of the `.info` files of `dir`, sorted so discovery order is stable; none if `dir` does not exist. */
async function listInfoFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  // Dotfiles are editor leftovers, not plugins.
  return names.filter((name) => name.endsWith(INFO_SUFFIX) && !name.startsWith('.')).sort();
}

async function loadPlugin(
  id: string,
  dir: string,
  infoPath: string,
  builtins: Record<string, () => Promise<OsPlugin>>,
  cloudBuiltins: Record<string, () => Promise<CloudPlugin>>,
): Promise<RegistryItem> {
  let text: string;
  try {
    text = await readFile(infoPath, 'utf8');
  } catch (e) {
    return { entry: brokenEntry(id, dir, infoPath, {}, null, new PluginError('info_unreadable', `cannot read ${id}${INFO_SUFFIX}: ${thrownMessage(e)}`)), loaded: null };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { entry: brokenEntry(id, dir, infoPath, {}, null, new PluginError('info_not_json', `invalid JSON: ${thrownMessage(e)}`)), loaded: null };
  }
  const info = isRecord(raw) ? raw : {};
  let declared: PluginInfo;
  try {
    declared = parsePluginInfo(raw);
  } catch (e) {
    return { entry: brokenEntry(id, dir, infoPath, info, null, e), loaded: null };
  }
  try {
    // A symlinked .info (the original's way of enabling a plugin) finds its module beside the real file.
    const moduleDir = dirname(await realpath(infoPath));
    const loaded = await loadImplementation(id, declared, moduleDir, builtins, cloudBuiltins);
    return { entry: { id, info, dir, infoPath, declared, error: null, errorCode: null, loaded: true }, loaded };
  } catch (e) {
    return { entry: brokenEntry(id, dir, infoPath, info, declared, e), loaded: null };
  }
}

async function loadImplementation(
  id: string,
  declared: PluginInfo,
  moduleDir: string,
  builtins: Record<string, () => Promise<OsPlugin>>,
  cloudBuiltins: Record<string, () => Promise<CloudPlugin>>,
): Promise<LoadedPlugin> {
  if (declared.type === 'cloud') {
    if (declared.module !== null) return { type: 'cloud', plugin: await importDefaultExport(declared.module, moduleDir) };
    const builtin = Object.hasOwn(cloudBuiltins, id) ? cloudBuiltins[id] : undefined;
    if (builtin === undefined) throw new PluginError('builtin_unknown', `no module given, and there is no built-in cloud plugin "${id}"`);
    let plugin: unknown;
    try {
      plugin = await builtin();
    } catch (e) {
      throw new PluginError('module_invalid', `built-in cloud plugin "${id}": plugin factory threw: ${thrownMessage(e)}`);
    }
    const problem = cloudPluginProblem(plugin);
    if (problem !== null) throw new PluginError('module_invalid', `built-in cloud plugin "${id}": ${problem}`);
    return { type: 'cloud', plugin };
  }
  if (declared.module !== null) return { type: 'os', plugin: await loadOsModule(declared.module, moduleDir) };
  const builtin = Object.hasOwn(builtins, id) ? builtins[id] : undefined;
  if (builtin === undefined) throw new PluginError('builtin_unknown', `no module given, and there is no built-in plugin "${id}"`);
  return { type: 'os', plugin: await callFactory(builtin, `built-in plugin "${id}"`) };
}

function brokenEntry(id: string, dir: string, infoPath: string, info: Record<string, unknown>, declared: PluginInfo | null, thrown: unknown): PluginEntry {
  // Anything not a PluginError is a fault of ours, still reported on the entry rather than thrown.
  const error = thrown instanceof PluginError ? thrown : new PluginError('module_invalid', thrownMessage(thrown));
  return { id, info, dir, infoPath, declared, error: error.message, errorCode: error.code, loaded: false };
}

async function readRawInfo(infoPath: string): Promise<Record<string, unknown>> {
  try {
    const raw: unknown = JSON.parse(await readFile(infoPath, 'utf8'));
    return isRecord(raw) ? raw : {};
  } catch {
    return {};
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
