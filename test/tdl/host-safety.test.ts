import { describe, expect, it } from 'vitest';
import { formatTdlError, parseTdl } from '../../src/tdl/index.js';
import { allowedFileUrlPath, fileNameProblem } from '../../src/tdl/values.js';
import { tdl } from './helpers.js';

/** Names and URLs by which a template would reach the build host are refused at validation, with where and why. */

describe('file names that would leave the image root', () => {
  it('reports the line, column, path and code of a "../" name', () => {
    const xml = tdl('<files>\n  <file name="/ok">a</file>\n  <file name="/../../../../../../tmp/IF_H1">pwned</file>\n</files>');
    const result = parseTdl(xml);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toHaveLength(1);
    const [e] = result.errors;
    expect(e).toMatchObject({ code: 'invalid_file_name', path: '/template/files/file[2]', line: 6, col: 3 });
    expect(formatTdlError(e!)).toBe('line 6, col 3: /template/files/file[2]: file name "/../../../../../../tmp/IF_H1" has a ".." component');
  });

  it.each([
    ['', 'is empty'],
    ['etc/passwd', 'must be an absolute path (starting with "/")'],
    ['/etc/a\0b', 'contains a NUL character'],
    ['/etc/a\nb', 'contains the control character U+000A'],
    ['/etc/a\x1b[2J', 'contains the control character U+001B'],
    ['/etc/../x', 'has a ".." component'],
    ['/etc/./x', 'has a "." component'],
    ['/etc/', 'names a directory (ends with "/"); it must name a file'],
    [`/${'a'.repeat(256)}`, 'has a component longer than 255 bytes'],
    [`/${'a/'.repeat(2048)}b`, 'is longer than 4095 bytes'],
  ])('%j %s', (name, problem) => expect(fileNameProblem(name)).toBe(problem));

  it('accepts ordinary names, dots inside names included', () => {
    for (const name of ['/etc/motd', '/a..b/c..', '/.config/x', '/etc//double']) expect(fileNameProblem(name)).toBeNull();
  });
});

describe('file: URLs in file and command contents', () => {
  const fileUrl = (url: string) => tdl(`<files><file name="/x" type="url">${url}</file></files>`);

  it('refuses file:///etc/shadow by default, naming the configuration key', () => {
    const result = parseTdl(fileUrl('file:///etc/shadow'));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => e.code)).toEqual(['file_url_forbidden']);
    expect(result.errors[0]!.message).toMatch(/file_url_dirs/);
  });

  it('accepts a file under a directory the operator allowed, and nothing outside it', () => {
    const opts = { fileUrlDirs: ['/srv/templates/'] };
    expect(parseTdl(fileUrl('file:///srv/templates/motd'), opts).ok).toBe(true);
    expect(parseTdl(fileUrl('file://localhost/srv/templates/sub/motd'), opts).ok).toBe(true);
    for (const url of [
      'file:///etc/shadow',
      'file:///srv/templates/../../etc/shadow',
      'file:///srv/templates/%2e%2e/%2e%2e/etc/shadow',
      'file:///srv/templates%2f..%2f..%2fetc/shadow',
      'file:///srv/templatesX/motd',
      'file:///srv/templates',
      'file://otherhost/srv/templates/motd',
      'file:///srv/templates/a%00b',
    ]) {
      const result = parseTdl(fileUrl(url), opts);
      expect(result.ok ? 'ok' : result.errors.map((e) => e.code).join(), url).toBe('file_url_forbidden');
    }
  });

  it('applies to commands and precommands too', () => {
    const xml = tdl('<commands><command name="c" type="url">file:///root/.ssh/id_rsa</command></commands><precommands><command name="p" type="url">file:///etc/shadow</command></precommands>');
    const result = parseTdl(xml);
    expect(result.ok ? [] : result.errors.map((e) => [e.code, e.path])).toEqual([
      ['file_url_forbidden', '/template/commands/command[1]'],
      ['file_url_forbidden', '/template/precommands/command[1]'],
    ]);
  });

  it('applies to the install media and the ISO extras, which the guest would be handed', () => {
    const os = (install: string) =>
      `<template><name>t</name><os><name>Debian</name><version>12</version><arch>x86_64</arch>${install}<rootpw>pw</rootpw></os></template>`;
    const iso = os('<install type="iso"><iso>file:///etc/shadow</iso><sha256sum>file:///root/SUMS</sha256sum><extras><file source="file:///root/.ssh/id_rsa" destination="/k"/><directory source="/etc" destination="/e"/></extras></install>');
    const refused = parseTdl(iso);
    expect(refused.ok ? [] : refused.errors.map((e) => [e.code, e.path])).toEqual([
      ['file_url_forbidden', '/template/os/install/iso'],
      ['file_url_forbidden', '/template/os/install/sha256sum'],
      ['file_url_forbidden', '/template/os/install/extras/file[1]'],
      ['file_url_forbidden', '/template/os/install/extras/directory[2]'],
    ]);
    expect(refused.ok ? '' : formatTdlError(refused.errors[0]!)).toMatch(/the install ISO "file:\/\/\/etc\/shadow" is a file of the build host; file: URLs are refused unless the configuration's file_url_dirs allows a directory$/);
    const tree = parseTdl(os('<install type="url"><url>file:///</url></install>'));
    expect(tree.ok ? [] : tree.errors.map((e) => [e.code, e.path])).toEqual([['file_url_forbidden', '/template/os/install/url']]);

    const opts = { fileUrlDirs: ['/var/lib/imagefactory/isos'] };
    const allowed = os('<install type="iso"><iso>file:///var/lib/imagefactory/isos/d.iso</iso><sha256sum>file:///var/lib/imagefactory/isos/d.iso.sha256</sha256sum><extras><file source="file:///var/lib/imagefactory/isos/ks.cfg" destination="/ks.cfg"/></extras></install>');
    expect(parseTdl(allowed, opts).ok).toBe(true);
    expect(parseTdl(os('<install type="iso"><iso>http://mirror/d.iso</iso></install>')).ok).toBe(true);
  });

  it('resolves the allowed path the same way the fetcher will read it', () => {
    expect(allowedFileUrlPath('file:///srv/t/a/../b', ['/srv/t'])).toBe('/srv/t/b');
    expect(allowedFileUrlPath('file:///srv/t/x%20y', ['/srv/t'])).toBe('/srv/t/x y');
    expect(allowedFileUrlPath('http://srv/t/x', ['/srv/t'])).toBeNull();
  });
});
