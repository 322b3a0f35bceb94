export { ConfigError, type ConfigErrorCode, type ConfigProblem } from './errors.js';
export { daemonHelp, parseDaemonArgs, DAEMON_OPTIONS, type DaemonArgs } from './flags.js';
export { loadConfig, type LoadOptions, type LoadResult } from './load.js';
export { isSecretName, redactConfig, REDACTED } from './redact.js';
export {
  CONFIG_KEYS,
  DEFAULT_CONFIG_PATH,
  defaultConfig,
  describeType,
  isConfigKey,
  SCHEMA,
  type Config,
  type ConfigKey,
  type ImageManagerArgs,
  type KeySpec,
  type ValueType,
} from './schema.js';
