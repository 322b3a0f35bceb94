/**
 * A template as it may be shown (REST, logs): the text of every `<rootpw>`
 * and `<key>` element replaced by a mask, and passwords in URLs masked.
 *
 * The mask is computed by reading the XML, not by a regular expression over
 * the text: what belongs to the element is decided as a parser decides it,
 * so `<rootpw>a<!--</rootpw>-->TAIL</rootpw>` masks `TAIL` too (the first
 * `</rootpw>` is inside a comment), and so does a CDATA section that hides a
 * closing tag. Where the text stops being readable XML (an unclosed comment,
 * a tag without its `>`), everything from there on is masked: a mask may
 * hide too much, never too little.
 */

export const MASK = '********';

/** Elements whose text is a secret. */
const SECRET_ELEMENTS = new Set(['rootpw', 'key']);

/** `scheme://user:password@` → `scheme://user:********@`; the last `@` before the path ends the user part, as URL parsers read it. */
export function redactUrlCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@:]*):([^\s/?#]*)@/gi, (_m, scheme: string, user: string) => `${scheme}${user}:${MASK}@`);
}

export function redactTemplateText(xml: string): string {
  let out = '';
  let i = 0;
  const open: string[] = [];
  /** Depth of `open` at which the secret element was opened; -1 while not in one. */
  let secretDepth = -1;
  const masking = () => secretDepth >= 0;
  const emit = (s: string) => {
    if (!masking()) out += s;
  };
  /** The rest cannot be read: mask it all. */
  const unreadable = () => `${out}${MASK}`;

  while (i < xml.length) {
    if (xml.startsWith('<!--', i)) {
      const end = xml.indexOf('-->', i + 4);
      if (end < 0) return unreadable();
      emit(xml.slice(i, end + 3));
      i = end + 3;
    } else if (xml.startsWith('<![CDATA[', i)) {
      const end = xml.indexOf(']]>', i + 9);
      if (end < 0) return unreadable();
      emit(redactUrlCredentials(xml.slice(i, end + 3)));
      i = end + 3;
    } else if (xml.startsWith('<?', i)) {
      const end = xml.indexOf('?>', i + 2);
      if (end < 0) return unreadable();
      emit(xml.slice(i, end + 2));
      i = end + 2;
    } else if (xml.startsWith('<!', i)) {
      // A DOCTYPE or other declaration: never accepted in a template; not read here either.
      return unreadable();
    } else if (xml.startsWith('</', i)) {
      const end = xml.indexOf('>', i);
      if (end < 0) return unreadable();
      const name = xml.slice(i + 2, end).trim();
      if (open.pop() !== name) return unreadable();
      if (masking() && open.length === secretDepth) {
        out += MASK;
        secretDepth = -1;
      }
      emit(xml.slice(i, end + 1));
      i = end + 1;
    } else if (xml[i] === '<') {
      const end = tagEnd(xml, i);
      if (end < 0) return unreadable();
      const tag = xml.slice(i, end + 1);
      const name = /^<([^\s/>]+)/.exec(tag)?.[1];
      if (!name) return unreadable();
      emit(redactUrlCredentials(tag));
      if (!tag.endsWith('/>')) {
        if (!masking() && SECRET_ELEMENTS.has(name)) secretDepth = open.length;
        open.push(name);
      }
      i = end + 1;
    } else {
      const next = xml.indexOf('<', i);
      const stop = next < 0 ? xml.length : next;
      emit(redactUrlCredentials(xml.slice(i, stop)));
      i = stop;
    }
  }
  // An element left open at the end: its text so far is hidden.
  return masking() ? `${out}${MASK}` : out;
}

/** Index of the `>` that ends the tag starting at `start`, skipping quoted attribute values; -1 when there is none. */
function tagEnd(xml: string, start: number): number {
  let quote: string | null = null;
  for (let j = start + 1; j < xml.length; j++) {
    const c = xml[j]!;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '>') return j;
    else if (c === '<') return -1;
  }
  return -1;
}
