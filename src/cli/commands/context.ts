import { Client } from '../client/http.js';
import { UsageError } from '../client/exit.js';
import { readText } from '../client/parameters.js';
import type { ProgressStream } from '../client/progress.js';

/** What every daemon command gets: the client, the output mode and the streams. */

export const DEFAULT_URL = 'http://127.0.0.1:8075';

export interface GlobalFlags {
  url?: unknown;
  output?: unknown;
  key?: unknown;
  secret?: unknown;
  ca?: unknown;
  insecure?: unknown;
}

export interface Io {
  out: { write(text: string): unknown };
  err: ProgressStream;
}

export interface Context {
  client: Client;
  url: string;
  /** `--output json`: machine-readable results on stdout. */
  json: boolean;
  io: Io;
  /** Leaves at once with `code` (the second Ctrl-C). */
  exit: (code: number) => void;
}

/**
 * One option's value as text. sade turns numeric-looking values into numbers
 * and repeated options into arrays (the last one wins here); a flag given
 * without its value arrives as `true`.
 */
export function optionText(value: unknown, flag: string): string | undefined {
  if (value === undefined || value === null || value === false) return undefined;
  const last = Array.isArray(value) ? value[value.length - 1] : value;
  if (last === true || last === '') throw new UsageError(`${flag} needs a value`);
  return String(last);
}

/** `http(s)://host:port[/prefix]`, without a trailing slash or `/imagefactory` (the client adds it). */
export function daemonUrl(flag: unknown, env: NodeJS.ProcessEnv): string {
  const given = optionText(flag, '--url') ?? (env.IMAGEFACTORY_URL || undefined) ?? DEFAULT_URL;
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    throw new UsageError(`--url ${given}: not a URL (e.g. ${DEFAULT_URL})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url ${given}: only http:// and https:// URLs are supported`);
  if (url.username || url.password) throw new UsageError('--url must not carry a user or password');
  const path = url.pathname.replace(/\/+$/, '').replace(/\/imagefactory$/, '');
  return `${url.protocol}//${url.host}${path}`;
}

export function outputMode(flag: unknown): 'log' | 'json' {
  const mode = optionText(flag, '--output') ?? 'log';
  if (mode !== 'log' && mode !== 'json') throw new UsageError(`--output must be log or json, not ${mode}`);
  return mode;
}

export function createContext(flags: GlobalFlags, io: Io, exit: (code: number) => void, env: NodeJS.ProcessEnv = process.env): Context {
  if (optionText(flags.key, '--key') !== undefined || optionText(flags.secret, '--secret') !== undefined) {
    throw new UsageError(
      'OAuth signing (--key/--secret) is not available in this version yet, and requests are never sent unsigned when a key is given; ' +
        'nothing was sent. Use a daemon started with --no_oauth, or drop --key/--secret.',
    );
  }
  const url = daemonUrl(flags.url, env);
  const json = outputMode(flags.output) === 'json';
  const caFile = optionText(flags.ca, '--ca');
  const ca = caFile === undefined ? undefined : readText(caFile, '--ca');
  const client = new Client({ url, ...(ca !== undefined ? { ca } : {}), insecure: flags.insecure === true });
  return { client, url, json, io, exit };
}
