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
