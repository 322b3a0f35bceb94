import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTargetContent, mergeTargetContent, parseTargetContent, selectInclude, targetContentFor, TargetContentError } from '../../src/clouds/target-content.js';
import { parseTdlOrThrow } from '../../src/tdl/index.js';

const TDL = `<template>
  <name>t</name>
  <os><name>Debian</name><version>12</version><arch>x86_64</arch><install type="url"><url>http://deb.debian.org/debian</url></install><rootpw>pw</rootpw></os>
  <repositories><repository name="extra"><url>deb http://example.invalid/debian bookworm main</url><signed>yes</signed></repository></repositories>
  <packages><package name="jq"/><package name="cloud-init"/></packages>
</template>`;

const DOC = `<?xml version="1.0"?>
<template_includes>
  <include><packages><package name="any-target"/></packages></include>
  <include target="ec2"><packages><package name="ec2-any-os"/></packages></include>
  <include target="ec2" os="Debian"><packages><package name="ec2-debian"/></packages></include>
  <include target="ec2" os="Debian" version="12"><packages><package name="ec2-debian-12"/></packages></include>
  <include target="ec2" os="Debian" version="12" arch="x86_64">
    <packages><package name="cloud-init"/><package name="ec2-debian-12-x86_64"/></packages>
    <repositories><repository name="cloud"><url>http://example.invalid/cloud</url><signed>no</signed><persisted>no</persisted></repository></repositories>
  </include>
</template_includes>`;

const os = (version: string, arch: string, name = 'Debian') => ({ name, version, arch });

describe('target_content.xml', () => {
  const doc = parseTargetContent(DOC);

  it('picks the most specific include: target+os+version+arch, then without arch, without version, without os, then no attributes', () => {
    expect(selectInclude(doc, 'ec2', os('12', 'x86_64'))?.packages).toEqual(['cloud-init', 'ec2-debian-12-x86_64']);
    expect(selectInclude(doc, 'ec2', os('12', 'aarch64'))?.packages).toEqual(['ec2-debian-12']);
    expect(selectInclude(doc, 'ec2', os('11', 'x86_64'))?.packages).toEqual(['ec2-debian']);
    expect(selectInclude(doc, 'ec2', os('22.04', 'x86_64', 'Ubuntu'))?.packages).toEqual(['ec2-any-os']);
    expect(selectInclude(doc, 'gce', os('12', 'x86_64'))?.packages).toEqual(['any-target']);
    expect(selectInclude(parseTargetContent('<template_includes/>'), 'ec2', os('12', 'x86_64'))).toBeNull();
  });

  it('reads repositories with their flags', () => {
    expect(selectInclude(doc, 'ec2', os('12', 'x86_64'))?.repositories).toEqual([{ name: 'cloud', url: 'http://example.invalid/cloud', signed: false, persisted: false, sslverify: true }]);
  });

  it('merges the content into a parsed template: new packages and repositories appended, the template’s own kept, the input unchanged', () => {
    const template = parseTdlOrThrow(TDL);
    const merged = mergeTargetContent(template, targetContentFor(doc, 'ec2', template));
    expect(merged.packages.map((p) => p.name)).toEqual(['jq', 'cloud-init', 'ec2-debian-12-x86_64']);
    expect(merged.repositories.map((r) => r.name)).toEqual(['extra', 'cloud']);
    expect(template.packages.map((p) => p.name)).toEqual(['jq', 'cloud-init']);
    expect(mergeTargetContent(template, null)).toBe(template);
  });

  it('refuses malformed or hostile documents with the line and column', () => {
    const bad = (text: string) => {
      try {
        parseTargetContent(text, 'tc.xml');
        return 'parsed';
      } catch (e) {
        expect(e).toBeInstanceOf(TargetContentError);
        expect((e as TargetContentError).code).toBe('target_content_invalid');
        return (e as Error).message;
      }
    };
    expect(bad('<template_includes><include target="ec2">')).toMatch(/^tc\.xml: line 1, col \d+: not well-formed XML/);
    expect(bad('<!DOCTYPE x [<!ENTITY a "b">]><template_includes/>')).toMatch(/^tc\.xml: line 1, col 1: /);
    expect(bad('<includes/>')).toBe('tc.xml: line 1, col 1: the root element must be <template_includes>, not <includes>');
    expect(bad('<template_includes>\n  <include os="Debian"/>\n</template_includes>')).toBe('tc.xml: line 2, col 3: an include with os must also name the target');
    expect(bad('<template_includes>\n  <include target="ec2" arch="x86_64" os="Debian"/>\n</template_includes>')).toBe('tc.xml: line 2, col 3: an include with arch must also name the version (matching widens from the right)');
    expect(bad('<template_includes><include target="ec2"><packages><package/></packages></include></template_includes>')).toMatch(/<package> needs a name attribute$/);
    expect(bad('<template_includes><include target="ec2" cloud="x"/></template_includes>')).toMatch(/unknown attribute cloud/);
  });

  it('treats a missing file as no content, and reads the shipped default', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'h12-tc-'));
    try {
      expect((await loadTargetContent(join(dir, 'none.xml'))).includes).toEqual([]);
      writeFileSync(join(dir, 'tc.xml'), DOC);
      expect((await loadTargetContent(join(dir, 'tc.xml'))).includes).toHaveLength(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const shipped = await loadTargetContent(new URL('../../conf/target_content.xml', import.meta.url).pathname);
    const debian = os('12', 'x86_64');
    const pkgs = (t: string) => selectInclude(shipped, t, debian)?.packages ?? [];
    for (const t of ['ec2', 'openstack-kvm', 'gce', 'azure']) expect(pkgs(t)).toContain('cloud-init');
    expect(pkgs('libvirt')).toEqual(['qemu-guest-agent']);
    expect(pkgs('vsphere')).toEqual(['open-vm-tools']);
    expect(pkgs('ova')).toEqual(['open-vm-tools']);
    expect(pkgs('hyperv')).toEqual(['hyperv-daemons']);
    expect(pkgs('rhevm')).toContain('qemu-guest-agent');
    expect(pkgs('docker')).toEqual([]);
  });
});
