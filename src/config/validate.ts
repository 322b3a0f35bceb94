import { isSecretName } from './redact.js';
import { describeType, SCHEMA, type ConfigKey, type ValueType } from './schema.js';

/** One wrong value; `path` is the key, dotted or indexed for nested values (`clients.app`, `jeos_config[1]`). */
export interface ValueProblem {
  path: string;
  expected: string;
  /** The wrong value in words; for secrets only its type (`a number`), never the value. */
  got: string;
}

export type CheckResult = { ok: true; value: unknown } | { ok: false; problems: ValueProblem[] };

function typeNoun(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  const t = typeof value;
  return t === 'object' ? 'an object' : `a ${t}`;
}

/** How a wrong value is shown: strings quoted (and shortened), scalars as they are, containers and secrets by type only. */
export function describeGot(value: unknown, secret: boolean): string {
  if (secret) return typeNoun(value);
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value);
    return quoted.length > 60 ? `${quoted.slice(0, 56)}…"` : quoted;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return typeNoun(value);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

function checkType(type: ValueType, value: unknown, path: string, fallback: unknown, secret: boolean): CheckResult {
  const wrong = (p = path, expected = describeType(type), v = value, s = secret): CheckResult => ({
    ok: false,
    problems: [{ path: p, expected, got: describeGot(v, s) }],
  });
  switch (type.kind) {
    case 'boolean':
      if (typeof value === 'boolean') return { ok: true, value };
      if (value === 0 || value === 1) return { ok: true, value: value === 1 };
      return wrong();
    case 'number': {
      if (type.nullable && value === null) return { ok: true, value };
      const fits =
        typeof value === 'number' &&
        Number.isFinite(value) &&
        (!type.integer || Number.isInteger(value)) &&
        value >= type.min &&
        (type.max === undefined || value <= type.max);
      return fits ? { ok: true, value } : wrong();
    }
    case 'string':
      return isNonEmptyString(value) ? { ok: true, value } : wrong();
    case 'path':
      return isNonEmptyString(value) || (type.nullable && value === null) ? { ok: true, value } : wrong();
    case 'enum':
      return typeof value === 'string' && type.values.includes(value) ? { ok: true, value } : wrong();
    case 'string-map': {
      if (!isObject(value)) return wrong();
      const problems: ValueProblem[] = [];
      for (const [name, v] of Object.entries(value)) {
        if (!isNonEmptyString(v)) problems.push({ path: `${path}.${name}`, expected: 'a non-empty string', got: describeGot(v, secret) });
      }
      return problems.length ? { ok: false, problems } : { ok: true, value: { ...value } };
    }
    case 'number-map': {
      if (!isObject(value)) return wrong();
      const problems: ValueProblem[] = [];
      for (const [name, v] of Object.entries(value)) {
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) problems.push({ path: `${path}.${name}`, expected: 'a non-negative number', got: describeGot(v, secret) });
      }
      return problems.length ? { ok: false, problems } : { ok: true, value: { ...value } };
    }
    case 'path-list': {
      if (!Array.isArray(value)) return wrong();
      const problems: ValueProblem[] = [];
      value.forEach((v, i) => {
        if (!isNonEmptyString(v)) problems.push({ path: `${path}[${i}]`, expected: 'a path (non-empty string)', got: describeGot(v, secret) });
      });
      return problems.length ? { ok: false, problems } : { ok: true, value: [...value] };
    }
    case 'boolean-or-port':
      if (typeof value === 'boolean') return { ok: true, value };
      return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 65535 ? { ok: true, value } : wrong();
    case 'object': {
      if (!isObject(value)) return wrong();
      const merged: Record<string, unknown> = { ...(isObject(fallback) ? structuredClone(fallback) : {}), ...structuredClone(value) };
      const problems: ValueProblem[] = [];
      for (const name of type.strings) {
        const v = merged[name];
        if (!isNonEmptyString(v)) {
          problems.push({ path: `${path}.${name}`, expected: 'a non-empty string', got: describeGot(v, secret && isSecretName(name)) });
        }
      }
      return problems.length ? { ok: false, problems } : { ok: true, value: merged };
    }
  }
}

/**
 * Checks one key's value against the table and normalizes it (0/1 → boolean, objects merged over the
 * default); secret values are never described in the problems.
 */
export function checkValue(key: ConfigKey, value: unknown): CheckResult {
  const spec = SCHEMA[key];
  return checkType(spec.type, value, key, spec.default, spec.secret !== undefined);
}
