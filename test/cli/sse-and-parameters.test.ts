import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/client/exit.js';
import { extractParameterFlags, mergeParameters } from '../../src/cli/client/parameters.js';
import { SseParser } from '../../src/cli/client/sse.js';
import { scratch } from './helpers.js';

describe('the event stream parser', () => {
  it('assembles events split across chunks, with CRLF or LF, skipping heartbeat comments', () => {
    const p = new SseParser();
    expect(p.push(': events of image x\n\nid: 1\nevent: prog')).toEqual([]);
    expect(p.push('ress\r\ndata: {"a":1}\r')).toEqual([]);
    expect(p.push('\n\r\n: heartbeat\n\nevent: transition\ndata:{"b":2}\ndata: more\n\n')).toEqual([
      { id: '1', event: 'progress', data: '{"a":1}' },
      { id: '1', event: 'transition', data: '{"b":2}\nmore' },
    ]);
  });

  it('calls an event without a name "message" and drops events without data', () => {
    const p = new SseParser();
    expect(p.push('event: nothing\n\ndata: x\n\n')).toEqual([{ event: 'message', data: 'x' }]);
  });
});

describe('build parameters from the command line', () => {
  it('takes the two-valued --parameter and --file-parameter out of the arguments, in order', () => {
    const { rest, flags } = extractParameterFlags(['base_image', 't.tdl', '--parameter', 'a', '1', '--no-wait', '--file-parameter', 'b', 'f.txt', '--', '--parameter', 'x']);
    expect(rest).toEqual(['base_image', 't.tdl', '--no-wait', '--', '--parameter', 'x']);
    expect(flags).toEqual([
      { kind: 'value', name: 'a', value: '1' },
      { kind: 'file', name: 'b', value: 'f.txt' },
    ]);
  });

  it('refuses a missing value, an option where a value should be, and the NAME=VALUE form', () => {
    expect(() => extractParameterFlags(['--parameter', 'a'])).toThrow(UsageError);
    expect(() => extractParameterFlags(['--file-parameter', 'a', '--url'])).toThrow(/--file-parameter NAME FILE/);
    expect(() => extractParameterFlags(['--parameter=a', 'b'])).toThrow(/two values separated by spaces/);
  });

  it('merges the file, then the values, then the files, later ones winning', () => {
    const files = scratch();
    const json = files.file('p.json', '{"a":"file","b":"file","c":"file","keep":[1]}');
    const text = files.file('c.txt', 'from c.txt');
    const merged = mergeParameters(json, [
      { kind: 'file', name: 'c', value: text },
      { kind: 'value', name: 'b', value: 'value' },
      { kind: 'value', name: 'c', value: 'value' },
    ]);
    expect(merged).toEqual({ a: 'file', b: 'value', c: 'from c.txt', keep: [1] });
    expect(mergeParameters(undefined, [])).toEqual({});
  });
});
