/**
 * What must never leave the daemon in plain text: a template's root password,
 * passwords embedded in URLs (callbacks), and parameter values whose name says
 * they are secret.
 */

export const MASK = '********';

// `<rootpw …>` (not self-closing) up to its closing tag, CDATA sections
// included; an unclosed element is masked up to the end of the text.
const ROOTPW = /<rootpw\b([^>]*?)(?<!\/)>(?:<!\[CDATA\[[\s\S]*?\]\]>|[\s\S])*?(<\/rootpw\s*>|$)/gi;

export function maskRootpw(template: string): string {
  return template.replace(ROOTPW, (_whole, attrs: string, close: string) => `<rootpw${attrs}>${MASK}${close}`);
}

const SECRET_KEY = /passw(or)?d|secret|credential|token|private_?key|rootpw/i;

/** A copy of free-form parameters with secrets masked (URL passwords, secret-named keys). */
export function redactParameters(parameters: Record<string, unknown>): Record<string, unknown> {
  return redactValue(parameters, 0) as Record<string, unknown>;
}

function redactValue(value: unknown, depth: number): unknown {
  if (depth > 32) return MASK;
  if (typeof value === 'string') return redactUrlPassword(value);
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) && v !== null && v !== '' ? MASK : redactValue(v, depth + 1);
    return out;
  }
  return value;
}

/** `https://user:pw@host/x` → `https://user:********@host/x`; other strings unchanged. */
export function redactUrlPassword(text: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i.test(text)) return text;
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@\s]*):[^/@\s]*@/i, `$1:${MASK}@`);
}
