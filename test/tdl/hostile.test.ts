import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseTdl } from '../../src/tdl/index.js';
import { validateTemplateFile } from '../../src/tdl/validate-file.js';
import { tdl } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'imagefactory-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BILLION_LAUGHS = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<template><name>&lol9;</name></template>`;

const EXTERNAL_ENTITY = `<?xml version="1.0"?>
<!DOCTYPE template [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> <!ENTITY net SYSTEM "http://169.254.169.254/latest/"> ]>
<template><name>&xxe;&net;</name></template>`;

function timed<T>(fn: () => T): { value: T; ms: number } {
  const start = performance.now();
  const value = fn();
  return { value, ms: performance.now() - start };
}

describe('hostile XML is refused fast, before any expansion or fetch', () => {
  it('refuses a billion-laughs document', () => {
    const { value, ms } = timed(() => parseTdl(BILLION_LAUGHS));
    expect(value.ok ? [] : value.errors.map((e) => [e.code, e.line, e.col])).toEqual([['xml_forbidden_declaration', 2, 1]]);
    expect(ms).toBeLessThan(200);
  });

  it('refuses external entities without reading the file or the network', () => {
    const { value } = timed(() => parseTdl(EXTERNAL_ENTITY));
    expect(value.ok).toBe(false);
    if (value.ok) return;
    expect(value.errors[0]!.code).toBe('xml_forbidden_declaration');
    expect(value.errors[0]!.message).toContain('<!DOCTYPE>');
    expect(JSON.stringify(value)).not.toContain('root:');
  });

  it('refuses a DOCTYPE placed after the root element', () => {
    const result = parseTdl(tdl() + '\n<!DOCTYPE x>');
    expect(result.ok ? [] : result.errors.map((e) => e.code)).toEqual(['xml_forbidden_declaration']);
  });

  it('ignores declaration-like text inside comments and CDATA', () => {
    expect(parseTdl(tdl('<!-- <!DOCTYPE x> --><description><![CDATA[<!ENTITY y "z">]]></description>')).ok).toBe(true);
  });

  it('refuses references to undefined entities instead of passing them through', () => {
    const result = parseTdl(tdl('<description>&xxe;</description>'));
    expect(result.ok ? [] : result.errors.map((e) => [e.code, e.path])).toEqual([['xml_undefined_entity', '/template/description']]);
  });

  it('refuses a 50 MB document from disk without reading it', async () => {
    const big = join(dir, 'big.tdl');
    writeFileSync(big, tdl(`<description>${'x'.repeat(50 * 1024 * 1024)}</description>`));
    const start = performance.now();
    const report = await validateTemplateFile(big);
    const ms = performance.now() - start;
    expect(report.valid).toBe(false);
    expect(report.errors.map((e) => e.code)).toEqual(['xml_too_large']);
    expect(report.errors[0]!.message).toMatch(/larger than the limit of 4194304 bytes/);
    expect(ms).toBeLessThan(200);
  });

  it('refuses a 50 MB document given as a string', () => {
    const big = tdl(`<description>${'x'.repeat(50 * 1024 * 1024)}</description>`);
    const { value, ms } = timed(() => parseTdl(big));
    expect(value.ok ? [] : value.errors.map((e) => e.message)).toEqual([`document is at least ${big.length} bytes, larger than the limit of 4194304 bytes`]);
    expect(ms).toBeLessThan(200);
  });

  it('measures a document in UTF-8 bytes, not characters', () => {
    const doc = tdl(`<description>${'é'.repeat(2_200_000)}</description>`);
    expect(doc.length).toBeLessThan(4194304);
    const result = parseTdl(doc);
    expect(result.ok ? [] : result.errors.map((e) => e.message)).toEqual([`document is ${Buffer.byteLength(doc)} bytes, larger than the limit of 4194304 bytes`]);
  });

  it('refuses nesting deeper than the limit', () => {
    const deep = tdl(`<description>${'<a>'.repeat(10000)}${'</a>'.repeat(10000)}</description>`);
    const { value, ms } = timed(() => parseTdl(deep));
    expect(value.ok ? [] : value.errors.map((e) => e.code)).toEqual(['xml_too_deep']);
    expect(ms).toBeLessThan(200);
  });

  it('refuses more than one root element', () => {
    const result = parseTdl(tdl() + tdl());
    expect(result.ok ? [] : result.errors.map((e) => e.code)).toEqual(['xml_malformed']);
  });
});
