import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors.js';

interface MediaRange {
  type: string;
  subtype: string;
  q: number;
}

/** The media ranges of an `Accept` header, lower-cased, with their q-values (default 1). */
export function parseAccept(header: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  for (const element of header.split(',')) {
    const [range = '', ...params] = element.split(';').map((s) => s.trim());
    if (!range) continue;
    // `*` alone is a common shorthand for `*/*`.
    const [type = '', subtype = ''] = range === '*' ? ['*', '*'] : range.toLowerCase().split('/');
    if (!type || !subtype) continue;
    let q = 1;
    for (const p of params) {
      const m = /^q\s*=\s*(.*)$/i.exec(p);
      if (!m) continue;
      const value = Number(m[1]);
      q = Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 1;
    }
    ranges.push({ type, subtype, q });
  }
  return ranges;
}

/**
 * Whether the client accepts `offered` (`type/subtype`): the most specific
 * matching range decides (`type/subtype` over `type/*` over `*\/*`), so
 * `application/json;q=0, *\/*` refuses JSON. No header, or one that names no
 * valid range, accepts everything.
 */
export function accepts(header: string | undefined, offered: string): boolean {
  if (header === undefined || header.trim() === '') return true;
  const ranges = parseAccept(header);
  if (ranges.length === 0) return true;
  const [type, subtype] = offered.toLowerCase().split('/');
  let best: { specificity: number; q: number } | null = null;
  for (const r of ranges) {
    const specificity =
      r.type === type && r.subtype === subtype ? 3 : r.type === type && r.subtype === '*' ? 2 : r.type === '*' && r.subtype === '*' ? 1 : 0;
    if (specificity === 0) continue;
    if (!best || specificity > best.specificity || (specificity === best.specificity && r.q > best.q)) best = { specificity, q: r.q };
  }
  return best !== null && best.q > 0;
}

/** Refuses with 406 `not_acceptable` unless the request's `Accept` allows `offered`. */
export function requireAcceptable(req: IncomingMessage, offered: string): void {
  const header = req.headers.accept;
  if (!accepts(header, offered)) {
    throw new ApiError(406, 'not_acceptable', `this resource is only available as ${offered}; Accept was "${header}"`, { available: [offered] });
  }
}
