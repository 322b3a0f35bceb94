import { declaredSecrets, isSecretName } from '../store/secrets.js';
import { MASK, redactTemplateText, redactUrlCredentials } from '../tdl/redact.js';

/**
 * What must never leave the daemon in plain text: a template's root password
 * (and product key), passwords embedded in URLs (callbacks, repositories),
 * the answer file a build was given (`install_script`, which carries a root
 * password), and parameter values whose name says they are secret or that
 * the request declared secret (`parameters.secret_parameters`).
 */

export { MASK };

/** The template as shown: `<rootpw>`/`<key>` text masked as an XML reader sees it, URL passwords masked. */
export function maskRootpw(template: string): string {
  return redactTemplateText(template);
}

/** A copy of free-form parameters with secrets masked (URL passwords, secret-named and declared-secret values). */
export function redactParameters(parameters: Record<string, unknown>): Record<string, unknown> {
  return redactValue(parameters, 0, declaredSecrets(parameters)) as Record<string, unknown>;
}

function redactValue(value: unknown, depth: number, declared: Set<string>): unknown {
  if (depth > 32) return MASK;
  if (typeof value === 'string') return redactUrlPassword(value);
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1, declared));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = isSecretName(k, declared) && v !== null && v !== '' ? MASK : redactValue(v, depth + 1, declared);
    }
    return out;
  }
  return value;
}

/** `https://user:pw@host/x` → `https://user:********@host/x`, wherever such a URL stands in the text. */
export function redactUrlPassword(text: string): string {
  return redactUrlCredentials(text);
}
