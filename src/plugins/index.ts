export { discoverPlugins, type DiscoverOptions } from './discover.js';
export { createPluginRegistry, type LoadedPlugin, type PluginEntry, type PluginRegistry, type RegistryItem } from './registry.js';
export { parsePluginInfo, type CloudTarget, type OsTarget, type PluginInfo, type PluginMaintainer, type PluginType } from './info.js';
export { PluginError, type PluginErrorCode } from './errors.js';
export { toApiPlugin, type ApiPlugin } from './api.js';
export { BUILTIN_PLUGINS } from './builtin.js';
export { osPluginProblem } from './load.js';
