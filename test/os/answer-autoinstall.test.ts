import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAutoinstall, sha512Crypt, writeNocloudSeed } from '../../src/os/answer/index.js';
import { extractFromIso, isoVolumeId } from '../../src/os/media/index.js';
import { example, lineStarting, runTool, tempDir, template, toolAvailable } from './helpers.js';
import { describeWithTools, itWithTools, tool } from '../tools.js';

const PYYAML = { name: 'python3-yaml', command: 'python3', args: ['-c', 'import yaml'] };

/** The document as a YAML parser reads it (PyYAML), to prove the hand-written YAML is what it looks like. */
function parseYaml(text: string): any {
  const r = runTool('python3', ['-c', 'import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))'], Buffer.from(text));
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout.toString('utf8'));
}

describe('the Ubuntu 22.04 example as an autoinstall', () => {
  const answer = generateAutoinstall(example('ubuntu-22.04'));
  const c = answer.content;

  it('is #cloud-config user-data with autoinstall version 1 and a meta-data companion', () => {
    expect(answer).toMatchObject({ installer: 'autoinstall', fileName: 'user-data', source: 'generated' });
    expect(c.split('\n')[0]).toBe('#cloud-config');
    expect(c).toMatch(/^autoinstall:\n(?:#.*\n)*  version: 1$/m);
    expect(answer.companions).toEqual([{ name: 'meta-data', content: 'instance-id: "imagefactory-ubuntu-jammy-base"\nlocal-hostname: "ubuntu-jammy-base"\n' }]);
  });

  it('pins the key settings a reviewer checks', () => {
    expect(lineStarting(c, 'uri: ')).toBe('uri: "http://archive.ubuntu.com/ubuntu"');
    expect(c).toContain('  storage:\n    layout:\n      name: direct\n');
    expect(lineStarting(c, 'size: ')).toBe(`size: ${640 * 1024 * 1024}`);
    expect(c).toContain('  packages:\n    - "cloud-init"\n    - "openssh-server"\n');
    expect(lineStarting(c, 'shutdown: ')).toBe('shutdown: poweroff');
    expect(c).not.toMatch(/^\s+identity:/m);
    expect(c).toContain('console=ttyS0,115200n8');
  });

  it('sets the root password crypted through a late-command, never plain', () => {
    const m = /usermod --password '(\$6\$([./0-9A-Za-z]{16})\$[./0-9A-Za-z]{86})' root/.exec(c);
    expect(m).not.toBeNull();
    expect(sha512Crypt('changeme-at-first-boot', m![2]!)).toBe(m![1]);
    expect(c).not.toContain('changeme-at-first-boot');
  });

  itWithTools([PYYAML], 'parses as the intended YAML structure', () => {
    const doc = parseYaml(c);
    const ai = doc.autoinstall;
    expect(ai.version).toBe(1);
    expect(ai.apt.primary).toEqual([{ arches: ['default'], uri: 'http://archive.ubuntu.com/ubuntu' }]);
    expect(ai.apt.sources).toEqual({ 'imagefactory-jammy-updates.list': { source: 'deb http://archive.ubuntu.com/ubuntu jammy-updates main universe' } });
    expect(ai.storage).toEqual({ layout: { name: 'direct' }, swap: { size: 671088640 } });
    expect(ai.packages).toEqual(['cloud-init', 'openssh-server']);
    expect(ai['user-data']).toEqual({ disable_root: false, hostname: 'ubuntu-jammy-base' });
    expect(ai['late-commands'][0]).toMatch(/^curtin in-target --target=\/target -- usermod --password '\$6\$.+' root$/);
    expect(ai['late-commands'][1]).toBe(
      `curtin in-target --target=/target -- sh -c 'sed -i "s/^GRUB_CMDLINE_LINUX_DEFAULT=.*/GRUB_CMDLINE_LINUX_DEFAULT=\\"console=tty0 console=ttyS0,115200n8\\"/" /etc/default/grub && update-grub'`,
    );
    expect(ai.shutdown).toBe('poweroff');
    expect(ai.ssh).toEqual({ 'install-server': true, 'allow-pw': false });
  });
});

describe('autoinstalls for other inputs', () => {
  it('keeps the ISO\'s own archive for iso installs and generates a password when there is none', () => {
    const answer = generateAutoinstall(template({ name: 'Ubuntu', version: '24.04', rootpw: null, install: '<install type="iso"><iso>http://releases.example.com/ubuntu-24.04-live-server-amd64.iso</iso></install>' }));
    expect(answer.content).not.toContain('primary:');
    expect(answer.rootPassword?.generated).toBe(true);
    const password = answer.rootPassword!.secret.reveal();
    expect(answer.content).not.toContain(password);
    const hash = /usermod --password '([^']+)'/.exec(answer.content)![1]!;
    expect(sha512Crypt(password, hash.split('$')[2]!)).toBe(hash);
  });

  itWithTools([PYYAML], 'completes bare repository URLs with $RELEASE for releases without a known suite, and honours persisted/signed/sslverify', () => {
    const doc = parseYaml(
      generateAutoinstall(
        template({
          name: 'Ubuntu',
          version: '24.10',
          extra: `<repositories>
            <repository name="ppa tools"><url>https://ppa.example.com/ubuntu</url><persisted>no</persisted></repository>
            <repository name="kept"><url>deb http://k.example.com/ubuntu oracular main</url><signed>yes</signed><sslverify>yes</sslverify></repository>
          </repositories>`,
        }),
      ).content,
    ).autoinstall;
    expect(doc.apt.sources).toEqual({
      'imagefactory-ppa-tools.list': { source: 'deb [trusted=yes] https://ppa.example.com/ubuntu $RELEASE main' },
      'imagefactory-kept.list': { source: 'deb http://k.example.com/ubuntu oracular main' },
    });
    expect(doc.apt.conf).toBe('Acquire::https::ppa.example.com::Verify-Peer "false";\nAcquire::https::ppa.example.com::Verify-Host "false";\n');
    expect(doc['late-commands']).toContain('rm -f /target/etc/apt/sources.list.d/imagefactory-ppa-tools.list');
  });

  it('is for Ubuntu 20.04 and later only', () => {
    expect(() => generateAutoinstall(template({ name: 'Ubuntu', version: '18.04' }))).toThrow(expect.objectContaining({ code: 'unsupported_version' }));
    expect(() => generateAutoinstall(example('debian-12'))).toThrow(expect.objectContaining({ code: 'unsupported_os' }));
  });
});

describeWithTools([tool('xorriso', ['-version'])], 'the NoCloud seed', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    dir = await tempDir('seed');
  });
  afterAll(async () => dir.cleanup());

  it('is an ISO 9660 volume labelled cidata holding user-data and meta-data', async () => {
    const answer = generateAutoinstall(example('ubuntu-22.04'));
    const iso = await writeNocloudSeed(answer, dir.path);
    expect(iso).toBe(join(dir.path, 'cidata.iso'));
    const listing = runTool('xorriso', ['-indev', iso, '-find', '/', '-type', 'f']);
    expect(listing.status).toBe(0);
    expect(listing.stdout.toString('utf8').trim().split('\n').sort()).toEqual(["'/meta-data'", "'/user-data'"]);
    expect(await isoVolumeId(iso)).toBe('cidata');
    const pvd = runTool('xorriso', ['-indev', iso, '-pvd_info']).stdout.toString('utf8');
    expect(pvd).toMatch(/^Volume Id\s*: cidata$/m);

    await extractFromIso(iso, [
      { isoPath: '/user-data', dest: join(dir.path, 'out', 'user-data') },
      { isoPath: '/meta-data', dest: join(dir.path, 'out', 'meta-data') },
    ]);
    expect(await readFile(join(dir.path, 'out', 'user-data'), 'utf8')).toBe(answer.content);
    expect(await readFile(join(dir.path, 'out', 'meta-data'), 'utf8')).toBe(answer.companions[0]!.content);
  });

  it('can be written again over an earlier seed, leaving no temporary file', async () => {
    const answer = generateAutoinstall(template({ name: 'Ubuntu', version: '24.04' }));
    await writeNocloudSeed(answer, dir.path);
    await writeNocloudSeed(answer, dir.path);
    expect((await readdir(dir.path)).filter((n) => n.includes('tmp'))).toEqual([]);
    const extracted = join(dir.path, 'again', 'user-data');
    await extractFromIso(join(dir.path, 'cidata.iso'), [{ isoPath: '/user-data', dest: extracted }]);
    expect(await readFile(extracted, 'utf8')).toBe(answer.content);
  });

  it('refuses to pack a preseed or kickstart', async () => {
    await expect(writeNocloudSeed({ ...generateAutoinstall(example('ubuntu-22.04')), installer: 'kickstart' }, dir.path)).rejects.toMatchObject({ code: 'unsupported_os' });
  });
});
