import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { TdlError } from './errors.js';
import { LineIndex } from './position.js';

/** A parsed element with its source position; the only XML shape the TDL rules see. */
export interface XmlElement {
  name: string;
  attrs: Map<string, string>;
  children: XmlElement[];
  /** Concatenated character data (text and CDATA) directly inside this element. */
  text: string;
  line: number;
  col: number;
}

type RawNode = Record<string, unknown>;

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };
const META = XMLParser.getMetaDataSymbol() as unknown as string;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  captureMetaData: true,
  // Entities are decoded here, not by the parser: only the five predefined
  // ones and character references exist in a document without a DTD.
  processEntities: false,
  trimValues: false,
  parseTagValue: false,
  parseAttributeValue: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  commentPropName: '#comment',
  cdataPropName: '#cdata',
});

/** Parses well-formed XML into elements, or returns the well-formedness errors. */
export function parseXmlTree(text: string): { root: XmlElement } | { errors: TdlError[] } {
  const lines = new LineIndex(text);
  const verdict = XMLValidator.validate(text);
  if (verdict !== true) {
    const { line, col, msg } = verdict.err;
    return { errors: [{ code: 'xml_malformed', path: '/', line, col: col ?? 1, message: `not well-formed XML: ${msg}` }] };
  }

  const errors: TdlError[] = [];
  const top = (parser.parse(text) as RawNode[]).map((n) => toElement(n, '', lines, errors)).filter(isElement);
  if (top.length !== 1) {
    const second = top[1];
    errors.push({
      code: 'xml_malformed',
      path: '/',
      line: second?.line ?? 1,
      col: second?.col ?? 1,
      message: `not well-formed XML: expected exactly one root element, found ${top.length}`,
    });
  }
  if (errors.length) return { errors };
  return { root: top[0]! };
}

function isElement(e: XmlElement | null): e is XmlElement {
  return e !== null;
}

function toElement(node: RawNode, parentPath: string, lines: LineIndex, errors: TdlError[]): XmlElement | null {
  const name = Object.keys(node).find((k) => k !== ':@');
  if (name === undefined || name === '#text' || name === '#comment' || name === '#cdata') return null;
  const meta = node[META] as { startIndex?: number } | undefined;
  const { line, col } = lines.at(meta?.startIndex ?? 0);
  const path = `${parentPath}/${name}`;
  const element: XmlElement = { name, attrs: new Map(), children: [], text: '', line, col };
  const at = { path, line, col };

  for (const [k, v] of Object.entries((node[':@'] as Record<string, string> | undefined) ?? {})) {
    element.attrs.set(k, decodeEntities(String(v), at, errors));
  }
  for (const child of node[name] as RawNode[]) {
    if ('#text' in child) element.text += decodeEntities(String(child['#text']), at, errors);
    else if ('#cdata' in child) element.text += (child['#cdata'] as RawNode[]).map((t) => String(t['#text'])).join('');
    else {
      const e = toElement(child, path, lines, errors);
      if (e) element.children.push(e);
    }
  }
  return element;
}

function decodeEntities(s: string, at: { path: string; line: number; col: number }, errors: TdlError[]): string {
  if (!s.includes('&')) return s;
  return s.replace(/&([^;&\s]*);?/g, (ref, body: string) => {
    const char = ref.endsWith(';') ? resolveReference(body) : null;
    if (char !== null) return char;
    errors.push({
      code: 'xml_undefined_entity',
      ...at,
      message: `undefined or malformed entity reference "${ref}" (only &lt; &gt; &amp; &apos; &quot; and character references are allowed)`,
    });
    return '';
  });
}

function resolveReference(body: string): string | null {
  if (body in PREDEFINED) return PREDEFINED[body]!;
  const m = /^#(?:x([0-9a-fA-F]+)|([0-9]+))$/.exec(body);
  if (!m) return null;
  const cp = m[1] !== undefined ? parseInt(m[1], 16) : parseInt(m[2]!, 10);
  const allowed =
    cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
  return allowed ? String.fromCodePoint(cp) : null;
}
