import { CONFIG_KEYS, SCHEMA, type Config } from './schema.js';

export const REDACTED = '***';

/** Property names that hold secrets inside free-form objects such as `image_manager_args`. */
const SECRET_NAME = /pass|secret|key|token|credential|auth|private|cert/i;

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** Replaces the values of secret-named properties, at any depth. */
function redactNamed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactNamed);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(value)) out[name] = isSecretName(name) ? REDACTED : redactNamed(v);
  return out;
}

/**
 * A printable copy of the configuration, in table order: every value of `clients` and every
 * secret-named property of `image_manager_args` becomes "***". Use it for anything that is printed or logged.
 */
export function redactConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const value: unknown = config[key];
    switch (SCHEMA[key].secret) {
      case 'map-values':
        out[key] = Object.fromEntries(Object.keys(value as object).map((name) => [name, REDACTED]));
        break;
      case 'matching-names':
        out[key] = redactNamed(value);
        break;
      default:
        out[key] = structuredClone(value);
    }
  }
  return out;
}
