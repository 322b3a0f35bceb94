import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { OsPlugin } from '../os/plugin.js';
import { describeValue, PluginError, thrownMessage } from './errors.js';

const OS_STEPS = ['prepare', 'install', 'customize'] as const;

/**
 * Imports the module at `modulePath` (as written in the .info, relative to
 * `baseDir`) and returns its default export. Every failure is a `PluginError`
 * whose message starts with `module "<modulePath>"`.
 */
export async function importDefaultExport(modulePath: string, baseDir: string): Promise<unknown> {
  const file = resolve(baseDir, modulePath);
  const label = `module ${JSON.stringify(modulePath)}`;
  try {
    await stat(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new PluginError('module_not_found', `${label} not found at ${file}`);
    throw new PluginError('module_not_found', `${label} cannot be read: ${thrownMessage(e)}`);
  }
  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    throw new PluginError('module_import_failed', `${label} failed to import: ${thrownMessage(e)}`);
  }
  if (namespace.default === undefined) throw new PluginError('module_invalid', `${label} has no default export`);
  return namespace.default;
}

/** Loads an OS plugin module: its default export is a factory `() => OsPlugin | Promise<OsPlugin>`. */
export async function loadOsModule(modulePath: string, baseDir: string): Promise<OsPlugin> {
  const label = `module ${JSON.stringify(modulePath)}`;
  const factory = await importDefaultExport(modulePath, baseDir);
  if (typeof factory !== 'function') {
    throw new PluginError('module_invalid', `${label}: default export must be a function returning an OS plugin, got ${describeValue(factory)}`);
  }
  return callFactory(factory as () => unknown, label);
}

/** Calls a plugin factory (from a module or the built-in map) and checks what it made. */
export async function callFactory(factory: () => unknown, label: string): Promise<OsPlugin> {
  let product: unknown;
  try {
    product = await factory();
  } catch (e) {
    throw new PluginError('module_invalid', `${label}: plugin factory threw: ${thrownMessage(e)}`);
  }
  const problem = osPluginProblem(product);
  if (problem !== null) throw new PluginError('module_invalid', `${label}: ${problem}`);
  return product as OsPlugin;
}

/** What keeps `value` from being an OsPlugin, or null if it is one. */
export function osPluginProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) {
    return `plugin factory must return an object with prepare, install and customize steps, got ${describeValue(value)}`;
  }
  const plugin = value as Record<string, unknown>;
  for (const name of OS_STEPS) {
    const step = plugin[name];
    if (typeof step !== 'object' || step === null) return `plugin has no ${name} step (an object with run and undo functions)`;
    for (const fn of ['run', 'undo'] as const) {
      if (typeof (step as Record<string, unknown>)[fn] !== 'function') return `${name}.${fn} must be a function`;
    }
  }
  return null;
}
