import { readFileSync } from 'node:fs';
import { UsageError } from './exit.js';

/**
 * Build parameters as the original client took them: `--parameters FILE.json`
 * (a JSON object), then each `--parameter NAME VALUE` (the value as text), then
 * each `--file-parameter NAME FILE` (the file's content as text); later ones
 * override earlier ones.
 */

export interface ParameterFlag {
  kind: 'value' | 'file';
  name: string;
  value: string;
}

const PAIR_FLAGS: Record<string, ParameterFlag['kind']> = { '--parameter': 'value', '--file-parameter': 'file' };

/**
 * Takes the two-valued `--parameter NAME VALUE` and `--file-parameter NAME
 * FILE` out of the arguments (the option parser only knows one-valued flags),
 * in order; everything after `--` is left alone.
 */
export function extractParameterFlags(args: readonly string[]): { rest: string[]; flags: ParameterFlag[] } {
  const rest: string[] = [];
  const flags: ParameterFlag[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      rest.push(...args.slice(i));
      break;
    }
    const kind = PAIR_FLAGS[arg];
    if (kind === undefined) {
      const joined = /^(--(file-)?parameter)=/.exec(arg);
      if (joined) throw new UsageError(`${joined[1]} takes two values separated by spaces: ${joined[1]} NAME ${joined[2] ? 'FILE' : 'VALUE'}`);
      rest.push(arg);
      continue;
    }
    const name = args[i + 1];
    const value = args[i + 2];
    // As the original's argparse: a word that looks like an option is not a value.
    if (name === undefined || value === undefined || name === '' || name.startsWith('--') || value.startsWith('--')) {
      throw new UsageError(`${arg} needs two values: ${arg} NAME ${kind === 'file' ? 'FILE' : 'VALUE'}`);
    }
    flags.push({ kind, name, value });
    i += 2;
  }
  return { rest, flags };
}

/** The merged parameters object, or a `UsageError` naming the file that could not be read or parsed. */
export function mergeParameters(parametersFile: string | undefined, flags: readonly ParameterFlag[]): Record<string, unknown> {
  const merged: Record<string, unknown> = {};
  if (parametersFile !== undefined) {
    const parsed = parseJsonFile(parametersFile);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError(`--parameters ${parametersFile}: the file must hold a JSON object`);
    Object.assign(merged, parsed);
  }
  for (const f of flags.filter((f) => f.kind === 'value')) merged[f.name] = f.value;
  for (const f of flags.filter((f) => f.kind === 'file')) merged[f.name] = readText(f.value, `--file-parameter ${f.name}`);
  return merged;
}

function parseJsonFile(file: string): unknown {
  const text = readText(file, '--parameters');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new UsageError(`--parameters ${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** A file's text; a `UsageError` (never its content) when it cannot be read. */
export function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UsageError(`${what}: cannot read ${file}: ${err.code === 'ENOENT' ? 'no such file' : (err.code ?? err.message)}`);
  }
}
