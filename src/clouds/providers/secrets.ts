// Credentials hygiene. Each push collects the secret strings of its credentials here (and of what
// is derived from them: a Basic header, a token) and passes every error, log line and fact that
// leaves it through `scrub`. SDK and HTTP errors can carry request details (headers, signed URLs,
// bodies), so an error is never passed on as it is: it is rebuilt from its scrubbed message, with
// no `cause`, no stack of the original and no attached request or response objects.
import { ProviderError, type ProviderErrorCode } from './errors.js';

export const SCRUBBED = '***';

/** Shorter strings are not scrubbed: replacing every "a" would destroy the message, not protect it. */
const MIN_SECRET_LENGTH = 3;

export class Secrets {
  readonly #values = new Set<string>();

  /** Adds secret strings (and the encodings in which they could appear in a message). */
  add(...values: (string | undefined | null)[]): this {
    for (const value of values) {
      if (!value || value.length < MIN_SECRET_LENGTH) continue;
      for (const form of [value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1), xmlEscape(value), Buffer.from(value).toString('base64')]) {
        if (form.length >= MIN_SECRET_LENGTH) this.#values.add(form);
      }
    }
    return this;
  }

  /** `text` with every secret replaced by `***` (longest first, so that no part of one survives). */
  scrub(text: string): string {
    let out = text;
    for (const secret of [...this.#values].sort((a, b) => b.length - a.length)) out = out.split(secret).join(SCRUBBED);
    return out;
  }

  /** A deep copy of a JSON-like value with every string scrubbed. */
  scrubValue<T>(value: T): T {
    return scrubDeep(value, (s) => this.scrub(s), 0) as T;
  }

  /**
   * A `ProviderError` safe to show: a `ProviderError` keeps its code, anything else becomes
   * `fallbackCode`; message and details are scrubbed and nothing of the original is attached.
   */
  error(error: unknown, fallbackCode: ProviderErrorCode = 'provider_error'): ProviderError {
    if (error instanceof ProviderError) {
      return new ProviderError(error.code, this.scrub(error.message), error.details ? this.scrubValue(error.details) : undefined);
    }
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return new ProviderError(fallbackCode, this.scrub(message));
  }

  /** A log function that scrubs before it writes. */
  logger(log: (line: string) => void): (line: string) => void {
    return (line) => log(this.scrub(line));
  }
}

function scrubDeep(value: unknown, scrub: (s: string) => string, depth: number): unknown {
  if (typeof value === 'string') return scrub(value);
  if (depth > 32 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrubDeep(v, scrub, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubDeep(v, scrub, depth + 1)]));
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}
