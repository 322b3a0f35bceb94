import { readFileSync } from 'node:fs';
import { ConfigError, type ConfigProblem } from './errors.js';
import { describeJsonError } from './json-error.js';
import { CONFIG_KEYS, DEFAULT_CONFIG_PATH, defaultConfig, isConfigKey, SCHEMA, type Config, type ConfigKey } from './schema.js';
import { checkValue, describeGot, type ValueProblem } from './validate.js';

export interface LoadOptions {
  /** An explicitly chosen file (`--config`); it must exist. Without it the default file is read if present. */
  configPath?: string;
  /** Values from the command line; they override the file. */
  flags?: Partial<Config>;
  /** The file read when `configPath` is not given (tests point it elsewhere). */
  defaultPath?: string;
}

export interface LoadResult {
  config: Config;
  /** Things worth telling the user that do not stop the daemon (unknown keys). */
  warnings: string[];
  /** The file that was read, or null when the default file is absent and only defaults apply. */
  source: string | null;
}

/** Reads the file's text; null when the default file is absent. */
function readConfigText(path: string, explicit: boolean): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit) return null;
    if (code === 'ENOENT') throw new ConfigError('config_missing', `config file ${path} does not exist`);
    const reason = code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new ConfigError('config_unreadable', `cannot read config file ${path}: ${reason}`);
  }
}

/** A key spelled like a known one (`ec2_32bit_util`, `No_SSL`), to suggest in the warning. */
function nearKey(name: string): ConfigKey | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  return CONFIG_KEYS.find((k) => norm(k) === norm(name));
}

function toProblem(p: ValueProblem, subject: string): ConfigProblem {
  return { key: p.path, expected: p.expected, message: `${subject} must be ${p.expected}, got ${p.got}` };
}

function flagSubject(key: ConfigKey, path: string): string {
  const flag = SCHEMA[key].flag;
  return flag !== undefined && path === key ? `option ${flag}` : `flag value "${path}"`;
}

/**
 * The effective configuration: defaults, then the JSON file, then `flags`. Throws ConfigError
 * (`config_missing`, `config_unreadable`, `config_invalid_json`, `config_wrong_type` listing every
 * wrong key); unknown keys only produce warnings. No message contains a secret value.
 */
export function loadConfig(options: LoadOptions = {}): LoadResult {
  const explicit = options.configPath !== undefined;
  const path = options.configPath ?? options.defaultPath ?? DEFAULT_CONFIG_PATH;
  const config = defaultConfig() as unknown as Record<ConfigKey, unknown>;
  const warnings: string[] = [];
  const problems: ConfigProblem[] = [];

  const text = readConfigText(path, explicit);
  if (text !== null) {
    const body = text.replace(/^\uFEFF/, '');
    let data: unknown;
    try {
      data = JSON.parse(body);
    } catch (e) {
      throw new ConfigError('config_invalid_json', `${path}: invalid JSON at ${describeJsonError(body, e)}`);
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      const expected = 'a JSON object';
      throw new ConfigError('config_wrong_type', `${path}: the configuration must be ${expected}, got ${describeGot(data, true)}`, [
        { key: '', expected, message: `the configuration must be ${expected}` },
      ]);
    }
    for (const [name, value] of Object.entries(data)) {
      if (!isConfigKey(name)) {
        const near = nearKey(name);
        warnings.push(`${path}: unknown key "${name}" ignored${near ? ` (did you mean "${near}"?)` : ''}`);
        continue;
      }
      const result = checkValue(name, value);
      if (result.ok) config[name] = result.value;
      else problems.push(...result.problems.map((p) => toProblem(p, `${path}: key "${p.path}"`)));
    }
  }

  for (const [name, value] of Object.entries(options.flags ?? {})) {
    if (value === undefined) continue;
    if (!isConfigKey(name)) {
      problems.push({ key: name, expected: 'a configuration key', message: `unknown flag value "${name}"` });
      continue;
    }
    const result = checkValue(name, value);
    if (result.ok) config[name] = result.value;
    else problems.push(...result.problems.map((p) => toProblem(p, flagSubject(name, p.path))));
  }

  if (problems.length > 0) {
    throw new ConfigError('config_wrong_type', problems.map((p) => p.message).join('\n'), problems);
  }
  return { config: config as unknown as Config, warnings, source: text === null ? null : path };
}
