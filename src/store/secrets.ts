import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Secrets at rest in the catalog. A template carries the root password (and
 * may carry repository credentials); parameters may carry an answer file
 * with a root password (`install_script`), cloud keys, or values the request
 * declared secret. The engine needs them in clear to build, also after a
 * restart, so the catalog keeps them sealed (AES-256-GCM) with a key of its
 * own, `secret.key` (0600) beside it: the catalog file, its backups and
 * dumps show no secret, and grepping the storage for a password finds
 * nothing. (Whoever can read the key file can open them: it is root's.)
 */

export const SEALED_PREFIX = 'ifsealed:v1:';
export const MASK = '********';

/** Names of parameters whose value is a secret wherever they stand; `install_script` is an answer file with a root password. */
const SECRET_NAME = /passw(or)?d|secret|credential|token|private_?key|rootpw|^install_script$/i;

/** Whether a parameter of this name is a secret, given the request's own `secret_parameters` list. */
export function isSecretName(name: string, declared: ReadonlySet<string> = new Set()): boolean {
  return name !== 'secret_parameters' && (SECRET_NAME.test(name) || declared.has(name));
}

/** `parameters.secret_parameters: ["name", …]`: names the request declared secret. */
export function declaredSecrets(parameters: Record<string, unknown>): Set<string> {
  const list = parameters.secret_parameters;
  return new Set(Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : []);
}

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /** The box of the catalog at `catalogFile`: its key file is created (0600) on first use; `:memory:` gets a key for this process only. */
  static forCatalog(catalogFile: string): SecretBox {
    if (catalogFile === ':memory:') return new SecretBox(randomBytes(32));
    const keyFile = join(catalogFile, '..', 'secret.key');
    try {
      const fd = openSync(keyFile, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      const key = randomBytes(32);
      try {
        writeSync(fd, key);
      } finally {
        closeSync(fd);
      }
      return new SecretBox(key);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const key = readFileSync(keyFile);
    if (key.length !== 32) throw new Error(`${keyFile} is not a 32-byte key`);
    return new SecretBox(key);
  }

  seal(text: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
    return `${SEALED_PREFIX}${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  /** The clear text of a sealed value; other text as it is; a value sealed with another key reads as the mask. */
  open(text: string): string {
    if (!text.startsWith(SEALED_PREFIX)) return text;
    try {
      const raw = Buffer.from(text.slice(SEALED_PREFIX.length), 'base64');
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    } catch {
      return MASK;
    }
  }

  /** Parameters with every secret value sealed (as JSON text, whatever its type), at any depth. */
  sealParameters(parameters: Record<string, unknown>): Record<string, unknown> {
    const declared = declaredSecrets(parameters);
    const walk = (value: unknown, depth: number): unknown => {
      if (depth > 32 || value === null || typeof value !== 'object') return value;
      if (Array.isArray(value)) return value.map((v) => walk(v, depth + 1));
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = isSecretName(k, declared) && v !== null && v !== undefined ? this.seal(JSON.stringify(v)) : walk(v, depth + 1);
      return out;
    };
    return walk(parameters, 0) as Record<string, unknown>;
  }

  /** The inverse of sealParameters. */
  openParameters(parameters: Record<string, unknown>): Record<string, unknown> {
    const walk = (value: unknown, depth: number): unknown => {
      if (typeof value === 'string' && value.startsWith(SEALED_PREFIX)) {
        const clear = this.open(value);
        try {
          return clear === MASK ? MASK : (JSON.parse(clear) as unknown);
        } catch {
          return MASK;
        }
      }
      if (depth > 33 || value === null || typeof value !== 'object') return value;
      if (Array.isArray(value)) return value.map((v) => walk(v, depth + 1));
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, depth + 1)]));
    };
    return walk(parameters, 0) as Record<string, unknown>;
  }
}
