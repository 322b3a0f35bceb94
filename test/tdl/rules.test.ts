import { describe, expect, it } from 'vitest';
import { parseTdl } from '../../src/tdl/index.js';
import { os, tdl, URL_INSTALL } from './helpers.js';

/** Each case: a document and either `valid` or the exact list of [code, path] it must produce. */
interface Case {
  rule: string;
  xml: string;
  errors?: [string, string][];
}

const ISO = (inner = '') => `<install type="iso"><iso>http://example.com/d.iso</iso>${inner}</install>`;
const repo = (inner: string, attrs = ' name="r"') => tdl(`<repositories><repository${attrs}>${inner}</repository></repositories>`);
const file = (attrs: string, body: string) => tdl(`<files><file${attrs}>${body}</file></files>`);
const command = (attrs: string, body: string) => tdl(`<commands><command${attrs}>${body}</command></commands>`);
const size = (s: string) => tdl(`<disk><size>${s}</size></disk>`);

const cases: Case[] = [
  // Document
  { rule: 'a minimal template with a url install is valid', xml: tdl() },
  { rule: 'version 1.0 is accepted', xml: tdl().replace('<template>', '<template version="1.0">') },
  { rule: 'any other version is refused', xml: tdl().replace('<template>', '<template version="2.0">'), errors: [['invalid_value', '/template']] },
  { rule: 'the root element must be template', xml: '<tdl><name>x</name></tdl>', errors: [['wrong_root', '/tdl']] },
  { rule: 'name is required', xml: `<template>${os()}</template>`, errors: [['missing_element', '/template']] },
  { rule: 'os is required', xml: '<template><name>x</name></template>', errors: [['missing_element', '/template']] },
  { rule: 'an empty template misses both name and os', xml: '<template/>', errors: [['missing_element', '/template'], ['missing_element', '/template']] },
  { rule: 'a repeated name is refused', xml: tdl('<name>again</name>'), errors: [['duplicate_element', '/template/name[2]']] },
  { rule: 'a repeated os is refused', xml: tdl(os()), errors: [['duplicate_element', '/template/os[2]']] },
  { rule: 'an unknown element is refused', xml: tdl('<flavour>x</flavour>'), errors: [['unexpected_element', '/template/flavour']] },
  { rule: 'an unknown attribute is refused', xml: tdl().replace('<template>', '<template lang="en">'), errors: [['unexpected_attribute', '/template']] },
  { rule: 'text between elements is refused', xml: tdl('stray words'), errors: [['unexpected_text', '/template']] },
  { rule: 'children may come in any order', xml: `<template><disk><size>5</size></disk>${os()}<description>d</description><name>n</name></template>` },
  { rule: 'a description is optional text', xml: tdl('<description>A web server</description>') },
  { rule: 'comments and CDATA are allowed', xml: tdl('<!-- note --><description><![CDATA[a < b & c]]></description>') },

  // <os>
  { rule: 'os name is required', xml: tdl('', os(URL_INSTALL, '<version>12</version><arch>x86_64</arch>')), errors: [['missing_element', '/template/os']] },
  { rule: 'os version is required', xml: tdl('', os(URL_INSTALL, '<name>Debian</name><arch>x86_64</arch>')), errors: [['missing_element', '/template/os']] },
  { rule: 'os arch is required', xml: tdl('', os(URL_INSTALL, '<name>Debian</name><version>12</version>')), errors: [['missing_element', '/template/os']] },
  ...['i386', 'x86_64', 'ppc64', 'ppc64le', 'aarch64', 'armv7l', 's390x'].map(
    (arch): Case => ({ rule: `arch ${arch} is accepted`, xml: tdl('', os(URL_INSTALL, `<name>Fedora</name><version>40</version><arch>${arch}</arch>`)) }),
  ),
  { rule: 'an unknown arch is refused', xml: tdl('', os(URL_INSTALL, '<name>F</name><version>1</version><arch>x86-64</arch>')), errors: [['invalid_value', '/template/os/arch']] },
  { rule: 'an arch with white space around it is refused', xml: tdl('', os(URL_INSTALL, '<name>F</name><version>1</version><arch> i386 </arch>')), errors: [['invalid_value', '/template/os/arch']] },
  { rule: 'a distribution no plugin builds is still a valid template', xml: tdl('', os(URL_INSTALL, '<name>RHEL-5</name><version>U7</version><arch>i386</arch>')) },
  { rule: 'install is required', xml: tdl('', os('')), errors: [['missing_element', '/template/os']] },
  { rule: 'two installs are refused', xml: tdl('', os(URL_INSTALL + URL_INSTALL)), errors: [['duplicate_element', '/template/os/install[2]']] },
  { rule: 'install needs a type', xml: tdl('', os('<install><url>http://x/</url></install>')), errors: [['missing_attribute', '/template/os/install']] },
  { rule: 'install type must be url or iso', xml: tdl('', os('<install type="floppy"><url>http://x/</url></install>')), errors: [['invalid_value', '/template/os/install']] },
  { rule: 'a url install needs its url', xml: tdl('', os('<install type="url"></install>')), errors: [['missing_element', '/template/os/install']] },
  { rule: 'an iso install is valid', xml: tdl('', os(ISO())) },
  { rule: 'an iso install needs its iso', xml: tdl('', os('<install type="iso"></install>')), errors: [['missing_element', '/template/os/install']] },
  { rule: 'an iso install may not carry a url', xml: tdl('', os(ISO('<url>http://x/</url>'))), errors: [['unexpected_element', '/template/os/install/url']] },
  ...['md5sum', 'sha1sum', 'sha256sum'].map((sum): Case => ({ rule: `an iso install may carry ${sum}`, xml: tdl('', os(ISO(`<${sum}>http://x/SUMS</${sum}>`))) })),
  ...[
    ['md5sum', 'sha1sum'],
    ['md5sum', 'sha256sum'],
    ['sha1sum', 'sha256sum'],
  ].map(([a, b]): Case => ({
    rule: `${a} and ${b} together are refused`,
    xml: tdl('', os(ISO(`<${a}>http://x/A</${a}><${b}>http://x/B</${b}>`))),
    errors: [['duplicate_element', `/template/os/install/${b}`]],
  })),
  { rule: 'a checksum is not allowed in a url install', xml: tdl('', os('<install type="url"><url>http://x/</url><md5sum>http://x/S</md5sum></install>')), errors: [['unexpected_element', '/template/os/install/md5sum']] },
  { rule: 'extras with files and directories are allowed in an iso install', xml: tdl('', os(ISO('<extras><directory source="http://x/a" destination="a"/><file source="http://x/b" destination="b"/></extras>'))) },
  { rule: 'extras may not be empty', xml: tdl('', os(ISO('<extras></extras>'))), errors: [['missing_element', '/template/os/install/extras']] },
  { rule: 'an extra needs a destination', xml: tdl('', os(ISO('<extras><file source="http://x/b"/></extras>'))), errors: [['missing_attribute', '/template/os/install/extras/file[1]']] },
  { rule: 'extras are refused in a url install', xml: tdl('', os('<install type="url"><url>http://x/</url><extras><file source="a" destination="b"/></extras></install>')), errors: [['unexpected_element', '/template/os/install/extras']] },
  { rule: 'rootpw, key and kernelparam are optional', xml: tdl('', os(`${URL_INSTALL}<rootpw>pw</rootpw><key>K-E-Y</key><kernelparam>console=ttyS0</kernelparam>`)) },
  { rule: 'rootpw may appear only once', xml: tdl('', os(`${URL_INSTALL}<rootpw>a</rootpw><rootpw>b</rootpw>`)), errors: [['duplicate_element', '/template/os/rootpw[2]']] },
  { rule: 'icicle carries an extra_command', xml: tdl('', os(`${URL_INSTALL}<icicle><extra_command>rpm -qa</extra_command></icicle>`)) },
  { rule: 'an empty icicle is refused', xml: tdl('', os(`${URL_INSTALL}<icicle/>`)), errors: [['missing_element', '/template/os/icicle']] },
  { rule: 'an unknown os child is refused', xml: tdl('', os(`${URL_INSTALL}<hostname>h</hostname>`)), errors: [['unexpected_element', '/template/os/hostname']] },

  // <packages>
  { rule: 'packages list package names', xml: tdl('<packages><package name="vim"/><package name="jq"/></packages>') },
  { rule: 'an empty packages element is valid', xml: tdl('<packages/>') },
  { rule: 'a package needs a name', xml: tdl('<packages><package name="a"/><package/></packages>'), errors: [['missing_attribute', '/template/packages/package[2]']] },
  { rule: 'a package may carry repository, file and arguments', xml: tdl('<packages><package name="a"><repository>r</repository><file>a.rpm</file><arguments>--nodeps</arguments></package></packages>') },
  { rule: 'a package child other than those is refused', xml: tdl('<packages><package name="a"><version>1</version></package></packages>'), errors: [['unexpected_element', '/template/packages/package[1]/version']] },
  { rule: 'only package elements go in packages', xml: tdl('<packages><pkg name="a"/></packages>'), errors: [['unexpected_element', '/template/packages/pkg']] },

  // <repositories>
  { rule: 'a repository with a url is valid', xml: repo('<url>http://mirror.example.com/repo</url>') },
  { rule: 'an empty repositories element is valid', xml: tdl('<repositories/>') },
  { rule: 'a repository needs a name', xml: repo('<url>http://m/</url>', ''), errors: [['missing_attribute', '/template/repositories/repository[1]']] },
  { rule: 'a repository needs a url', xml: repo('<signed>no</signed>'), errors: [['missing_element', '/template/repositories/repository[1]']] },
  { rule: 'a repository has only one url', xml: repo('<url>http://a/</url><url>http://b/</url>'), errors: [['duplicate_element', '/template/repositories/repository[1]/url[2]']] },
  ...['TRUE', 'False', 'yes', 'No', 'yEs'].map((b): Case => ({ rule: `boolean "${b}" is accepted`, xml: repo(`<url>http://m/</url><signed>${b}</signed><persisted>${b}</persisted><sslverify>${b}</sslverify>`) })),
  ...['signed', 'persisted', 'sslverify'].map((flag): Case => ({
    rule: `${flag} must be a boolean`,
    xml: repo(`<url>http://m/</url><${flag}>maybe</${flag}>`),
    errors: [['invalid_value', `/template/repositories/repository[1]/${flag}`]],
  })),
  { rule: 'a boolean with white space around it is refused', xml: repo('<url>http://m/</url><signed> yes</signed>'), errors: [['invalid_value', '/template/repositories/repository[1]/signed']] },
  ...['http://localhost/repo', 'http://127.0.0.1:8080/repo', 'http://localhost.localdomain/repo', 'deb http://localhost/debian bookworm main'].map((url): Case => ({
    rule: `a repository at ${url} is refused`,
    xml: repo(`<url>${url}</url>`),
    errors: [['localhost_repository', '/template/repositories/repository[1]/url']],
  })),
  { rule: 'an apt source line is a valid repository url', xml: repo('<url>deb http://deb.debian.org/debian bookworm-updates main</url>') },

  // <files>
  { rule: 'a file without a type is raw', xml: file(' name="/etc/a"', 'hello') },
  { rule: 'a raw file is valid', xml: file(' name="/etc/a" type="raw"', 'hello') },
  { rule: 'a base64 file is valid', xml: file(' name="/etc/a" type="base64"', 'aGVsbG8K') },
  { rule: 'an empty raw file is valid', xml: file(' name="/etc/a" type="raw"', '') },
  { rule: 'an empty base64 file is valid', xml: file(' name="/etc/a" type="base64"', '') },
  { rule: 'a file needs a name', xml: file(' type="raw"', 'x'), errors: [['missing_attribute', '/template/files/file[1]']] },
  { rule: 'a file type other than raw, base64, url is refused', xml: file(' name="/a" type="hex"', '00'), errors: [['invalid_value', '/template/files/file[1]']] },
  { rule: 'invalid base64 in a file is refused', xml: file(' name="/a" type="base64"', 'not base64!'), errors: [['invalid_base64', '/template/files/file[1]']] },
  { rule: 'base64 missing its padding is refused', xml: file(' name="/a" type="base64"', 'aGVsbG8'), errors: [['invalid_base64', '/template/files/file[1]']] },
  ...['http://example.com/f', 'https://example.com/f'].map((u): Case => ({ rule: `a url file at ${u} is valid`, xml: file(' name="/a" type="url"', u) })),
  { rule: 'a file: url file is refused without file_url_dirs', xml: file(' name="/a" type="url"', 'file:///srv/f'), errors: [['file_url_forbidden', '/template/files/file[1]']] },
  { rule: 'a file: url command is refused without file_url_dirs', xml: command(' name="c" type="url"', 'file:///etc/shadow'), errors: [['file_url_forbidden', '/template/commands/command[1]']] },
  ...['etc/a', 'a', '../etc/a', '/../../../../../../tmp/IF_H1', '/etc/../../x', '/etc/./a', '/etc/a/', '/', '/etc/a&#10;b', '/etc/a&#9;b', ' /etc/a'].map((name): Case => ({
    rule: `a file named ${JSON.stringify(name)} is refused`,
    xml: file(` name="${name}"`, 'x'),
    errors: [['invalid_file_name', '/template/files/file[1]']],
  })),
  // XML itself cannot carry NUL or escape characters: they are refused before any TDL rule.
  ...['/etc/a&#0;', '/etc/&#27;[2Ja'].map((name): Case => ({ rule: `a file named ${JSON.stringify(name)} is refused as XML`, xml: file(` name="${name}"`, 'x'), errors: [['xml_undefined_entity', '/template/files/file']] })),
  ...['/etc/a', '/etc//a', '/a..b/..c/d..', '/.hidden/.x', '/usr/share/ümlaut file'].map((name): Case => ({ rule: `a file named ${JSON.stringify(name)} is valid`, xml: file(` name="${name}"`, 'x') })),
  { rule: 'a url file needs an http, https or file url', xml: file(' name="/a" type="url"', 'ftp://example.com/f'), errors: [['invalid_value', '/template/files/file[1]']] },
  { rule: 'an unknown attribute on a file is refused', xml: file(' name="/a" mode="0644"', 'x'), errors: [['unexpected_attribute', '/template/files/file[1]']] },

  // <commands> and <precommands>
  { rule: 'a raw command is valid', xml: command(' name="c"', 'echo hi') },
  { rule: 'a base64 command is valid', xml: command(' name="c" type="base64"', 'ZWNobyBoaQ==') },
  { rule: 'a url command is valid', xml: command(' name="c" type="url"', 'http://example.com/hello.sh') },
  { rule: 'a command needs a name', xml: command('', 'echo'), errors: [['missing_attribute', '/template/commands/command[1]']] },
  { rule: 'a command type other than raw, base64, url is refused', xml: command(' name="c" type="shell"', 'echo'), errors: [['invalid_value', '/template/commands/command[1]']] },
  { rule: 'bogus base64 in a command is refused', xml: command(' name="c" type="base64"', '%%%'), errors: [['invalid_base64', '/template/commands/command[1]']] },
  { rule: 'an empty base64 command is refused', xml: command(' name="c" type="base64"', ''), errors: [['empty_command', '/template/commands/command[1]']] },
  { rule: 'an empty raw command is refused, as Oz does', xml: command(' name="c"', '  '), errors: [['empty_command', '/template/commands/command[1]']] },
  { rule: 'positions 1..n in any order are valid', xml: tdl('<commands><command name="b" position="2">b</command><command name="a" position="1">a</command></commands>') },
  { rule: 'mixing positioned and unpositioned commands is refused', xml: tdl('<commands><command name="a" position="1">a</command><command name="b">b</command></commands>'), errors: [['invalid_position', '/template/commands']] },
  { rule: 'duplicate positions are refused', xml: tdl('<commands><command name="a" position="1">a</command><command name="b" position="1">b</command></commands>'), errors: [['invalid_position', '/template/commands']] },
  { rule: 'a gap in positions is refused', xml: tdl('<commands><command name="a" position="1">a</command><command name="b" position="3">b</command></commands>'), errors: [['invalid_position', '/template/commands']] },
  { rule: 'a position must be a whole number', xml: tdl('<commands><command name="a" position="first">a</command></commands>'), errors: [['invalid_position', '/template/commands/command[1]']] },
  { rule: 'precommands follow the command rules', xml: tdl('<precommands><command name="a" position="1">a</command><command name="b" position="1">b</command></precommands>'), errors: [['invalid_position', '/template/precommands']] },
  { rule: 'precommands need names', xml: tdl('<precommands><command>a</command></precommands>'), errors: [['missing_attribute', '/template/precommands/command[1]']] },
  { rule: 'empty command lists are valid', xml: tdl('<commands/><precommands/>') },

  // <disk><size>
  ...['10', '10G', '10g', '2T', '10GB', '10 GiB', '512MiB', '100B', '1kB', '1KiB', '1PB', '1EiB', '1ZB', '1YiB', '1 tb'].map((s): Case => ({ rule: `disk size "${s}" is valid`, xml: size(s) })),
  ...['10E', 'T10', '1.5G', '', '-1', '10K', '10 G B', ' 10', 'ten'].map((s): Case => ({ rule: `disk size "${s}" is refused`, xml: size(s), errors: [['invalid_disk_size', '/template/disk/size']] })),
  { rule: 'disk needs a size', xml: tdl('<disk/>'), errors: [['missing_element', '/template/disk']] },
  { rule: 'disk has only one size', xml: tdl('<disk><size>1</size><size>2</size></disk>'), errors: [['duplicate_element', '/template/disk/size[2]']] },
];

describe('TDL rules (TDL.md), one verdict and error path per case', () => {
  it('has at least 60 cases', () => expect(cases.length).toBeGreaterThanOrEqual(60));

  it.each(cases.map((c) => [c.rule, c] as const))('%s', (_rule, c) => {
    const result = parseTdl(c.xml);
    if (!c.errors) {
      expect(result.ok ? [] : result.errors).toEqual([]);
      return;
    }
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => [e.code, e.path])).toEqual(c.errors);
    for (const e of result.errors) {
      expect(e.line).toBeGreaterThan(0);
      expect(e.col).toBeGreaterThan(0);
      expect(e.message.length).toBeGreaterThan(10);
    }
  });
});
