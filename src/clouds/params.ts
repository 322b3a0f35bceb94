import { StepError } from '../os/plugin.js';

/** Target parameters arrive as JSON values or, from the command line, as strings: both are read here. */

export function enumParam<T extends string>(parameters: Record<string, unknown>, name: string, values: readonly T[], fallback: T): T {
  const v = parameters[name];
  if (v === undefined || v === null || v === '') return fallback;
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) throw new StepError('bad_parameter', `parameter ${name} must be one of ${values.join(', ')}, not ${JSON.stringify(v)}`, { parameter: name });
  return v as T;
}

export function boolParam(parameters: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const v = parameters[name];
  if (v === undefined || v === null || v === '') return fallback;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number' && (v === 0 || v === 1)) return v === 1;
  if (typeof v === 'string' && /^(true|yes|1)$/i.test(v)) return true;
  if (typeof v === 'string' && /^(false|no|0)$/i.test(v)) return false;
  throw new StepError('bad_parameter', `parameter ${name} must be true or false, not ${JSON.stringify(v)}`, { parameter: name });
}

export function intParam(parameters: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const v = parameters[name];
  if (v === undefined || v === null || v === '') return fallback;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new StepError('bad_parameter', `parameter ${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(v)}`, { parameter: name });
  return n;
}
