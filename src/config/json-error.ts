/**
 * Words a JSON syntax error without quoting the file: V8's messages may include an excerpt of the
 * source ("…"clients": {"app": s3cr"… is not valid JSON"), and a configuration file holds secrets.
 */

/** The offset of the first syntax error in `text`, found the way JSON.parse reads; -1 if none is found. */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  class Stop {
    constructor(readonly at: number) {}
  }
  const fail = (at = i): never => {
    throw new Stop(at);
  };
  const literal = (word: string) => {
    for (const ch of word) {
      if (text[i] !== ch) fail();
      i++;
    }
  };
  const string = () => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail();
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail();
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail(i + 2);
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else fail(i + 1);
      } else i++;
    }
  };
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === '-') fail();
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        string();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return;
        } else fail();
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return;
        } else fail();
      }
    }
    if (c === '"') return string();
    if (c === 't') return literal('true');
    if (c === 'f') return literal('false');
    if (c === 'n') return literal('null');
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return number();
    fail();
  };
  try {
    value();
    ws();
    return i < text.length ? i : -1;
  } catch (e) {
    if (e instanceof Stop) return e.at;
    return -1; // e.g. nesting too deep for this reader: no position
  }
}

/** 1-based line and column of an offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - (before.lastIndexOf('\n') + 1) + 1 };
}

/** The parser's message without any source excerpt or position (those are given separately). */
export function sanitizeJsonMessage(message: string): string {
  return message
    .replace(/,\s*(\.\.\.)?".*"(\.\.\.)?\s+is not valid JSON\s*$/s, '')
    .replace(/^(Unexpected token .*?), ".*$/s, '$1')
    .replace(/\s+in JSON at position \d+.*$/s, '')
    .replace(/\s*\(line \d+ column \d+\)\s*$/, '')
    .trim()
    .replace(/[\u0000-\u001f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

/** `line 3, column 18: Unexpected token 's'` */
export function describeJsonError(text: string, error: unknown): string {
  const raw = error instanceof Error ? error.message : String(error);
  const message = sanitizeJsonMessage(raw) || 'not valid JSON';
  let offset = jsonErrorOffset(text);
  if (offset < 0) {
    const m = /at position (\d+)/.exec(raw);
    if (m) offset = Number(m[1]);
  }
  if (offset < 0) return message;
  const { line, column } = lineColumn(text, offset);
  return `line ${line}, column ${column}: ${message}`;
}
