import { describe, expect, it } from 'vitest';
import { accepts } from '../../src/api/negotiate.js';
import { parseRange } from '../../src/api/range.js';
import { maskRootpw, redactParameters, redactUrlPassword } from '../../src/api/redact.js';

describe('accepts', () => {
  it.each([
    [undefined, 'application/json', true],
    ['', 'application/json', true],
    ['application/json', 'application/json', true],
    ['*/*', 'application/json', true],
    ['*', 'application/json', true],
    ['application/*', 'application/json', true],
    ['application/*;q=0', 'application/json', false],
    ['application/*;q=0, application/json', 'application/json', true],
    ['application/json;q=0, application/*', 'application/json', false],
    ['*/*;q=0.5, application/json;q=0', 'application/json', false],
    ['text/xml', 'application/json', false],
    ['text/*, application/xml', 'application/json', false],
    ['text/event-stream', 'text/event-stream', true],
    ['text/*', 'text/plain', true],
    ['application/json;q=0.001', 'application/json', true],
    ['application/json; q=0.0', 'application/json', false],
    ['nonsense', 'application/json', true],
  ])('Accept %j offers %s → %s', (header, offered, expected) => {
    expect(accepts(header, offered)).toBe(expected);
  });
});

describe('parseRange', () => {
  it.each([
    [undefined, 100, { kind: 'full' }],
    ['bytes=0-0', 100, { kind: 'partial', start: 0, end: 0 }],
    ['bytes=10-19', 100, { kind: 'partial', start: 10, end: 19 }],
    ['bytes=10-', 100, { kind: 'partial', start: 10, end: 99 }],
    ['bytes=-1', 100, { kind: 'partial', start: 99, end: 99 }],
    ['bytes=90-200', 100, { kind: 'partial', start: 90, end: 99 }],
    ['bytes=100-', 100, { kind: 'unsatisfiable' }],
    ['bytes=-0', 100, { kind: 'unsatisfiable' }],
    ['bytes=0-', 0, { kind: 'unsatisfiable' }],
    ['bytes=9-1', 100, { kind: 'full' }],
    ['bytes=0-1,3-4', 100, { kind: 'full' }],
    ['bytes=-', 100, { kind: 'full' }],
    ['lines=0-1', 100, { kind: 'full' }],
  ] as const)('%s of %i bytes', (header, size, expected) => {
    expect(parseRange(header, size)).toEqual(expected);
  });
});

describe('maskRootpw', () => {
  it('masks the text of every rootpw element', () => {
    expect(maskRootpw('<os><rootpw>secret</rootpw></os>')).toBe('<os><rootpw>********</rootpw></os>');
    expect(maskRootpw('<rootpw>\n  a b c\n</rootpw><x/><rootpw>two</rootpw >')).toBe('<rootpw>********</rootpw><x/><rootpw>********</rootpw >');
  });

  it('masks CDATA that hides a closing tag, and an unclosed element to the end', () => {
    expect(maskRootpw('<rootpw><![CDATA[a</rootpw>b]]></rootpw><n/>')).toBe('<rootpw>********</rootpw><n/>');
    expect(maskRootpw('<os><rootpw>leak <more/>')).toBe('<os><rootpw>********');
  });

  it('leaves an empty self-closing element and text without rootpw alone', () => {
    expect(maskRootpw('<rootpw/><name>x</name>')).toBe('<rootpw/><name>x</name>');
    expect(maskRootpw('<rootpw/><rootpw>s</rootpw>')).toBe('<rootpw/><rootpw>********</rootpw>');
    expect(maskRootpw('<name>rootpw</name>')).toBe('<name>rootpw</name>');
  });
});

describe('redactParameters', () => {
  it('masks URL passwords and secret-named values at any depth, leaving the rest', () => {
    expect(
      redactParameters({
        callbacks: ['http://u:p@h/x', 'http://h/y'],
        nested: { api_token: 't', password: 'p', list: [{ secret: 's' }], memory: 1 },
        name: 'x',
      }),
    ).toEqual({
      callbacks: ['http://u:********@h/x', 'http://h/y'],
      nested: { api_token: '********', password: '********', list: [{ secret: '********' }], memory: 1 },
      name: 'x',
    });
  });

  it('redactUrlPassword changes only URLs with a password', () => {
    expect(redactUrlPassword('https://user@h/')).toBe('https://user@h/');
    expect(redactUrlPassword('not a url: a:b@c')).toBe('not a url: a:b@c');
  });
});

describe('secrets in what REST shows', () => {
  it('masks rootpw as an XML reader sees it: a closing tag inside a comment or CDATA does not end it', () => {
    expect(maskRootpw('<os><rootpw>a<!--</rootpw>-->TAIL</rootpw><name>n</name></os>')).toBe('<os><rootpw>********</rootpw><name>n</name></os>');
    expect(maskRootpw('<rootpw x=">"><![CDATA[</rootpw>]]>TAIL</rootpw>')).toBe('<rootpw x=">">********</rootpw>');
    expect(maskRootpw('<os><key>ABCD-EFGH</key></os>')).toBe('<os><key>********</key></os>');
  });

  it('masks everything from where the text stops being readable XML', () => {
    expect(maskRootpw('<os><name>x</name><!-- unclosed <rootpw>pw</rootpw>')).toBe('<os><name>x</name>********');
    expect(maskRootpw('<os><rootpw>pw</root></os>')).toBe('<os><rootpw>********');
    expect(maskRootpw('<!DOCTYPE x><rootpw>pw</rootpw>')).toBe('********');
  });

  it('masks URL passwords inside the template: repositories, contents, attributes', () => {
    const xml = '<repositories><repository name="r"><url>deb http://bob:hunter2@repo.example.com/debian bookworm main</url></repository></repositories><file name="/x" type="url">https://u:p%40ss@files.example.com/x</file>';
    const shown = maskRootpw(xml);
    expect(shown).not.toContain('hunter2');
    expect(shown).not.toContain('p%40ss');
    expect(shown).toContain('deb http://bob:********@repo.example.com/debian bookworm main');
  });

  it('masks install_script and the parameters a request declares secret, at any depth', () => {
    expect(redactParameters({ install_script: 'd-i passwd/root-password password x', secret_parameters: ['license'], license: 'L-123', nested: { license: 'L-456' }, memory: 1 })).toEqual({
      install_script: '********',
      secret_parameters: ['license'],
      license: '********',
      nested: { license: '********' },
      memory: 1,
    });
    expect(redactUrlPassword('http://u:p@ss@host/x and deb https://a:b@c/d')).toBe('http://u:********@host/x and deb https://a:********@c/d');
  });
});
