import type { IncomingMessage } from 'node:http';

/**
 * `Prefer: handling=strict` (RFC 7240): the client wants a request the
 * server can see is wrong refused at once. For a POST whose template does
 * not validate, that is today's 400 `template_invalid`; without it the
 * original Image Factory's clients get what they were written for — 202
 * and an image that is FAILED at once (REST.md, Errors).
 */
export function prefersStrictHandling(req: IncomingMessage): boolean {
  const header = req.headers.prefer;
  const values = Array.isArray(header) ? header : header ? [header] : [];
  return values
    .flatMap((v) => v.split(','))
    .map((p) => p.split(';')[0]!.trim().toLowerCase().replace(/\s*=\s*/, '=').replace(/"/g, ''))
    .includes('handling=strict');
}

/** The header that tells the client its preference was applied. */
export const STRICT_APPLIED = { 'preference-applied': 'handling=strict' } as const;
