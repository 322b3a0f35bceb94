import type { TdlError } from './errors.js';
import { LineIndex } from './position.js';

export interface XmlLimits {
  /** Largest document accepted, in bytes. */
  maxBytes: number;
  /** Deepest element nesting accepted (a TDL needs 5). */
  maxDepth: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = { maxBytes: 4 * 1024 * 1024, maxDepth: 32 };

/**
 * One linear pass over the raw text, before any parser sees it, so that
 * hostile documents cost nothing: DTD declarations (the only way to define
 * entities or reference external ones) are refused wherever they stand, and
 * nesting is counted. Comments and CDATA sections are skipped as opaque.
 */
export function screenXml(text: string, limits: XmlLimits = DEFAULT_XML_LIMITS): TdlError | null {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.maxBytes) return tooLarge(bytes, limits.maxBytes);

  let depth = 0;
  let i = text.indexOf('<');
  while (i !== -1 && i < text.length) {
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4);
      if (end === -1) break; // the parser reports the unterminated comment
      i = text.indexOf('<', end + 3);
      continue;
    }
    if (text.startsWith('<![CDATA[', i)) {
      const end = text.indexOf(']]>', i + 9);
      if (end === -1) break;
      i = text.indexOf('<', end + 3);
      continue;
    }
    if (text[i + 1] === '!') {
      const word = /^<!([A-Za-z]*)/.exec(text.slice(i, i + 12))?.[1] ?? '';
      const at = new LineIndex(text).at(i);
      return {
        code: 'xml_forbidden_declaration',
        path: '/',
        ...at,
        message: `<!${word}> declarations are not allowed in a template (no DTD, no entities, no external references)`,
      };
    }
    if (text[i + 1] === '?') {
      const end = text.indexOf('?>', i + 2);
      if (end === -1) break;
      i = text.indexOf('<', end + 2);
      continue;
    }
    const closing = text[i + 1] === '/';
    const end = endOfTag(text, i + 1);
    if (end === -1) break;
    if (closing) depth--;
    else if (text[end - 1] !== '/') {
      depth++;
      if (depth > limits.maxDepth) {
        return {
          code: 'xml_too_deep',
          path: '/',
          ...new LineIndex(text).at(i),
          message: `elements are nested more than ${limits.maxDepth} deep`,
        };
      }
    }
    i = text.indexOf('<', end + 1);
  }
  return null;
}

export function tooLarge(bytes: number, maxBytes: number, qualifier: '' | 'at least ' = ''): TdlError {
  return {
    code: 'xml_too_large',
    path: '/',
    line: 1,
    col: 1,
    message: `document is ${qualifier}${bytes} bytes, larger than the limit of ${maxBytes} bytes`,
  };
}

/** Index of the `>` that ends the tag starting before `from`, skipping quoted attribute values. */
function endOfTag(text: string, from: number): number {
  let quote = '';
  for (let j = from; j < text.length; j++) {
    const c = text[j];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '>') return j;
  }
  return -1;
}
