/** Stable codes for everything that can be wrong with the configuration or the daemon's command line. */
export type ConfigErrorCode =
  /** An explicitly given `--config` file does not exist. */
  | 'config_missing'
  /** The file exists but cannot be read (permissions, a directory…). */
  | 'config_unreadable'
  /** The file is not JSON. */
  | 'config_invalid_json'
  /** One or more keys (or flag values) have the wrong type or an out-of-range value. */
  | 'config_wrong_type'
  /** The command line itself is wrong: unknown option, missing value, stray argument. */
  | 'usage_invalid';

/** One wrong key; `key` is dotted for nested keys (`image_manager_args.storage_path`). */
export interface ConfigProblem {
  key: string;
  /** What was expected, e.g. `a non-negative number`. */
  expected: string;
  /** The full sentence, e.g. `imagefactory.conf: key "timeout" must be a non-negative number, got "abc"`. */
  message: string;
}

/**
 * Thrown by `loadConfig` and `parseDaemonArgs`. Messages never contain secret values: for secret keys
 * only the type of a wrong value is named, and JSON syntax errors are reported without the source excerpt.
 */
export class ConfigError extends Error {
  constructor(
    readonly code: ConfigErrorCode,
    message: string,
    /** Every wrong key, for `config_wrong_type`; the message is their messages, one a line. */
    readonly problems: readonly ConfigProblem[] = [],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}
