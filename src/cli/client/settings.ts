import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SIGNATURE_METHODS, type SignatureMethod } from '../../api/auth/signature-base.js';
import { UsageError } from './exit.js';

/**
 * The client's own configuration file (JSON), for what one would otherwise
 * repeat on every command line: the daemon's URL, the OAuth consumer key and
 * secret, the certificate to trust. `--config FILE`, else
 * `$IMAGEFACTORY_CLIENT_CONFIG`, else `$XDG_CONFIG_HOME/imagefactory/client.json`
 * (`~/.config/…`) when it exists. A file holding a secret must not be
 * readable by others, as ssh insists for its keys.
 */

export interface ClientSettings {
  url?: string;
  key?: string;
  secret?: string;
  signature_method?: SignatureMethod;
  /** PEM file of the certificate (authority) to trust. */
  ca?: string;
  /** The daemon's state directory (its storage path), where its transient certificate is. */
  state_dir?: string;
}

const KEYS: readonly (keyof ClientSettings)[] = ['url', 'key', 'secret', 'signature_method', 'ca', 'state_dir'];

/** The file to read and whether it was asked for (then it must exist). */
export function settingsPath(flag: string | undefined, env: NodeJS.ProcessEnv): { path: string; explicit: boolean } {
  if (flag !== undefined) return { path: flag, explicit: true };
  if (env.IMAGEFACTORY_CLIENT_CONFIG) return { path: env.IMAGEFACTORY_CLIENT_CONFIG, explicit: true };
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return { path: join(base, 'imagefactory', 'client.json'), explicit: false };
}

export function readSettings(path: string, explicit: boolean): ClientSettings {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit) return {};
    throw new UsageError(`client configuration ${path}: cannot read it: ${code === 'ENOENT' ? 'no such file' : (code ?? (e as Error).message)}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    // Only the parser's position: the text may hold a secret.
    throw new UsageError(`client configuration ${path}: not valid JSON (${(e as Error).message.replace(/"[^"]*"/g, '"…"')})`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new UsageError(`client configuration ${path}: must be a JSON object`);
  const out: ClientSettings = {};
  for (const [name, value] of Object.entries(data)) {
    if (!(KEYS as readonly string[]).includes(name)) throw new UsageError(`client configuration ${path}: unknown key "${name}" (known: ${KEYS.join(', ')})`);
    if (typeof value !== 'string' || value === '') throw new UsageError(`client configuration ${path}: "${name}" must be a non-empty string`);
    if (name === 'signature_method' && !SIGNATURE_METHODS.includes(value as SignatureMethod)) {
      throw new UsageError(`client configuration ${path}: "signature_method" must be one of ${SIGNATURE_METHODS.join(', ')}`);
    }
    (out as Record<string, string>)[name] = value;
  }
  if (out.secret !== undefined && (mode & 0o077) !== 0) {
    throw new UsageError(`client configuration ${path} holds an OAuth secret and other users can read it (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): chmod 600 ${path}`);
  }
  return out;
}
