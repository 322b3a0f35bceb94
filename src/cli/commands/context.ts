import { SIGNATURE_METHODS, type SignatureMethod } from '../../api/auth/signature-base.js';
import { transientCertPath } from '../../api/tls-files.js';
import { Client } from '../client/http.js';
import { UsageError } from '../client/exit.js';
import { readText } from '../client/parameters.js';
import type { ProgressStream } from '../client/progress.js';
import { readSettings, settingsPath, type ClientSettings } from '../client/settings.js';
import { daemonStateDir, findTransientCertificate } from '../client/trust.js';

/** What every daemon command gets: the client, the output mode and the streams. */

/** The daemon serves HTTPS on loopback by default. */
export const DEFAULT_URL = 'https://127.0.0.1:8075';

export interface GlobalFlags {
  url?: unknown;
  output?: unknown;
  key?: unknown;
  secret?: unknown;
  'signature-method'?: unknown;
  config?: unknown;
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
export function daemonUrl(flag: unknown, env: NodeJS.ProcessEnv, settings: ClientSettings = {}): string {
  const given = optionText(flag, '--url') ?? (env.IMAGEFACTORY_URL || undefined) ?? settings.url ?? DEFAULT_URL;
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

/**
 * The OAuth consumer: `--key`/`--secret`, else `$IMAGEFACTORY_KEY`/`$IMAGEFACTORY_SECRET`,
 * else the client configuration; a key without its secret (or the reverse) is a usage error,
 * so that nothing is ever sent unsigned by mistake.
 */
export function consumerOf(flags: GlobalFlags, env: NodeJS.ProcessEnv, settings: ClientSettings): { key: string; secret: string } | undefined {
  const key = optionText(flags.key, '--key') ?? (env.IMAGEFACTORY_KEY || undefined) ?? settings.key;
  const secret = optionText(flags.secret, '--secret') ?? (env.IMAGEFACTORY_SECRET || undefined) ?? settings.secret;
  if (key === undefined && secret === undefined) return undefined;
  if (key === undefined) throw new UsageError('an OAuth secret was given without its key (--key, $IMAGEFACTORY_KEY or "key" in the client configuration); nothing was sent');
  if (secret === undefined) throw new UsageError(`the OAuth key ${key} was given without its secret (--secret, $IMAGEFACTORY_SECRET or "secret" in the client configuration); nothing was sent`);
  return { key, secret };
}

function signatureMethodOf(flags: GlobalFlags, env: NodeJS.ProcessEnv, settings: ClientSettings): SignatureMethod {
  const method = optionText(flags['signature-method'], '--signature-method') ?? (env.IMAGEFACTORY_SIGNATURE_METHOD || undefined) ?? settings.signature_method ?? 'HMAC-SHA1';
  if (!SIGNATURE_METHODS.includes(method as SignatureMethod)) throw new UsageError(`--signature-method must be one of ${SIGNATURE_METHODS.join(', ')}, not ${method}`);
  return method as SignatureMethod;
}

export function createContext(flags: GlobalFlags, io: Io, exit: (code: number) => void, env: NodeJS.ProcessEnv = process.env): Context {
  const where = settingsPath(optionText(flags.config, '--config'), env);
  const settings = readSettings(where.path, where.explicit);
  const url = daemonUrl(flags.url, env, settings);
  const json = outputMode(flags.output) === 'json';
  const consumer = consumerOf(flags, env, settings);
  const signatureMethod = signatureMethodOf(flags, env, settings);
  const caFile = optionText(flags.ca, '--ca') ?? (env.IMAGEFACTORY_CA || undefined) ?? settings.ca;
  const ca = caFile === undefined ? undefined : readText(caFile, '--ca');
  // The local daemon's transient certificate is trusted as it is: pinned from its state directory.
  const stateDir = url.startsWith('https:') && ca === undefined ? daemonStateDir(env, settings.state_dir) : undefined;
  const pin = stateDir === undefined ? null : findTransientCertificate(stateDir);
  const client = new Client({
    url,
    ...(ca !== undefined ? { ca } : {}),
    ...(pin ? { pin } : stateDir !== undefined ? { pinLookedUp: transientCertPath(stateDir) } : {}),
    ...(consumer ? { consumer, signatureMethod } : {}),
    insecure: flags.insecure === true,
  });
  return { client, url, json, io, exit };
}
