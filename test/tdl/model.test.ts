import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatTdlError, parseTdl, parseTdlOrThrow, TemplateInvalidError } from '../../src/tdl/index.js';
import { os, tdl } from './helpers.js';

describe('the typed template model', () => {
  it('keeps disk sizes in bytes, defaulting to null (the plugin default), never 10 bytes', () => {
    expect(parseTdlOrThrow(tdl()).diskSizeBytes).toBeNull();
    expect(parseTdlOrThrow(tdl('<disk><size>10</size></disk>')).diskSizeBytes).toBe(10n * 1024n ** 3n);
    expect(parseTdlOrThrow(tdl('<disk><size>2T</size></disk>')).diskSizeBytes).toBe(2n * 1024n ** 4n);
    expect(parseTdlOrThrow(tdl('<disk><size>10GB</size></disk>')).diskSizeBytes).toBe(10_000_000_000n);
    expect(parseTdlOrThrow(tdl('<disk><size>512 MiB</size></disk>')).diskSizeBytes).toBe(512n * 1024n ** 2n);
    expect(parseTdlOrThrow(tdl('<disk><size>100B</size></disk>')).diskSizeBytes).toBe(100n);
    expect(parseTdlOrThrow(tdl('<disk><size>1YiB</size></disk>')).diskSizeBytes).toBe(1024n ** 8n);
  });

  it('resolves repository booleans with their defaults (signed no, persisted yes, sslverify no)', () => {
    const t = parseTdlOrThrow(
      tdl(`<repositories>
        <repository name="plain"><url>http://m/a</url></repository>
        <repository name="set"><url>http://m/b</url><signed>YES</signed><persisted>False</persisted><sslverify>true</sslverify></repository>
      </repositories>`),
    );
    expect(t.repositories).toEqual([
      { name: 'plain', url: 'http://m/a', signed: false, persisted: true, sslverify: false },
      { name: 'set', url: 'http://m/b', signed: true, persisted: false, sslverify: true },
    ]);
  });

  it('lets a later repository of the same name replace the earlier one', () => {
    const t = parseTdlOrThrow(tdl('<repositories><repository name="r"><url>http://a/</url></repository><repository name="r"><url>http://b/</url></repository></repositories>'));
    expect(t.repositories.map((r) => r.url)).toEqual(['http://b/']);
  });

  it('sorts positioned commands and keeps document order otherwise', () => {
    const positioned = parseTdlOrThrow(
      tdl('<commands><command name="c" position="3">c</command><command name="a" position="1">a</command><command name="b" position="2">b</command></commands>'),
    );
    expect(positioned.commands.map((c) => [c.name, c.position])).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
    const ordered = parseTdlOrThrow(tdl('<precommands><command name="z">z</command><command name="y">y</command></precommands>'));
    expect(ordered.precommands.map((c) => [c.name, c.position])).toEqual([
      ['z', null],
      ['y', null],
    ]);
  });

  it('decodes base64 and entities, strips content as Oz does, and leaves url content for build time', () => {
    const t = parseTdlOrThrow(
      tdl(`<files>
        <file name="/etc/b64" type="base64">aGVsbG8gd29ybGQK</file>
        <file name="/etc/raw">  a &lt;b&gt; &amp; &#x263A;  </file>
        <file name="/etc/remote" type="url">https://example.com/motd</file>
        <file name="/etc/empty" type="base64"></file>
      </files>
      <commands><command name="c" type="base64">ZWNobyBoaQ==</command></commands>`),
    );
    expect(t.files).toEqual([
      { name: '/etc/b64', content: { type: 'base64', data: Buffer.from('hello world\n') } },
      { name: '/etc/raw', content: { type: 'raw', data: Buffer.from('a <b> & ☺') } },
      { name: '/etc/remote', content: { type: 'url', url: 'https://example.com/motd' } },
      { name: '/etc/empty', content: { type: 'base64', data: Buffer.alloc(0) } },
    ]);
    expect(t.commands[0]!.content).toEqual({ type: 'base64', data: Buffer.from('echo hi') });
  });

  it('reads the os, install and optional parts', () => {
    const t = parseTdlOrThrow(
      tdl(
        '<description>d</description><packages><package name="jq"><arguments>-y</arguments></package></packages>',
        os(
          '<install type="iso"><iso>http://x/d.iso</iso><sha256sum>http://x/SUMS</sha256sum><extras><file source="http://x/a" destination="/b"/></extras></install><rootpw>pw</rootpw><icicle><extra_command>echo</extra_command></icicle>',
          '<name>Fedora</name><version>40</version><arch>aarch64</arch>',
        ),
      ),
    );
    expect(t.os).toEqual({
      name: 'Fedora',
      version: '40',
      arch: 'aarch64',
      install: { type: 'iso', iso: 'http://x/d.iso', checksum: { kind: 'sha256', url: 'http://x/SUMS' }, extras: [{ kind: 'file', source: 'http://x/a', destination: '/b' }] },
      rootpw: 'pw',
      key: null,
      kernelparam: null,
      icicleExtraCommand: 'echo',
    });
    expect(t.description).toBe('d');
    expect(t.packages).toEqual([{ name: 'jq', repository: null, file: null, arguments: '-y' }]);
  });

  it('requires rootpw only when the configuration says so', () => {
    expect(parseTdl(tdl()).ok).toBe(true);
    const result = parseTdl(tdl(), { requireRootPassword: true });
    expect(result.ok ? [] : result.errors.map((e) => [e.code, e.path])).toEqual([['missing_element', '/template/os']]);
  });

  it('accepts every shipped example', () => {
    const dir = new URL('../../examples/', import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith('.tdl'));
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const f of files) {
      const result = parseTdl(readFileSync(new URL(f, dir), 'utf8'));
      expect(result.ok ? [] : result.errors.map(formatTdlError), f).toEqual([]);
    }
  });
});

describe('error reports', () => {
  it('reports all three mistakes of a template, each with line, column and path', () => {
    const xml = [
      '<template>', // 1
      '  <name>three</name>', // 2
      '  <os>', // 3
      '    <name>Debian</name><version>12</version>', // 4
      '    <arch>sparc</arch>', // 5
      '    <install type="floppy"><url>http://x/</url></install>', // 6
      '  </os>', // 7
      '  <disk><size>10E</size></disk>', // 8
      '</template>',
    ].join('\n');
    const result = parseTdl(xml);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map(formatTdlError)).toEqual([
      'line 5, col 5: /template/os/arch: arch must be one of i386, x86_64, ppc64, ppc64le, aarch64, armv7l, s390x; got "sparc"',
      'line 6, col 5: /template/os/install: type must be "url" or "iso", got "floppy"',
      'line 8, col 9: /template/disk/size: size must be a whole number with an optional unit (G, T, B, kB…YB, KiB…YiB), e.g. "10" or "16GiB"; got "10E"',
    ]);
  });

  it('throws a typed error carrying every error', () => {
    expect(() => parseTdlOrThrow('<template/>')).toThrow(TemplateInvalidError);
    try {
      parseTdlOrThrow('<template/>');
    } catch (e) {
      expect((e as TemplateInvalidError).code).toBe('template_invalid');
      expect((e as TemplateInvalidError).errors).toHaveLength(2);
    }
  });

  it('gives the position of malformed XML', () => {
    const result = parseTdl('<template>\n  <name>x</nam>\n</template>');
    expect(result.ok ? [] : result.errors.map((e) => [e.code, e.line])).toEqual([['xml_malformed', 2]]);
  });
});
