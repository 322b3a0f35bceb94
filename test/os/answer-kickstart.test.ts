import { describe, expect, it } from 'vitest';
import { generateKickstart, identifyDistro, sha512Crypt } from '../../src/os/answer/index.js';
import { example, lineStarting, linesOf, template } from './helpers.js';

function expectCryptedRoot(content: string, password: string): void {
  const line = lineStarting(content, 'rootpw ');
  const m = /^rootpw --iscrypted (\$6\$([./0-9A-Za-z]{16})\$[./0-9A-Za-z]{86})$/.exec(line);
  expect(m, line).not.toBeNull();
  expect(sha512Crypt(password, m![2]!)).toBe(m![1]);
  expect(content).not.toContain(password);
  expect(content).not.toContain('--plaintext');
}

/** The `%packages` section's lines. */
function packagesOf(content: string): string[] {
  const lines = linesOf(content);
  const start = lines.indexOf('%packages');
  const end = lines.indexOf('%end', start);
  expect(start).toBeGreaterThan(-1);
  return lines.slice(start + 1, end);
}

/** The command section: everything before the first `%` section. */
function commandsOf(content: string): string[] {
  const lines = linesOf(content).filter((l) => !l.startsWith('#'));
  return lines.slice(0, lines.findIndex((l) => l.startsWith('%')));
}

describe('the Fedora 40 example as a kickstart', () => {
  const answer = generateKickstart(example('fedora-40'));
  const c = answer.content;

  it('is an Anaconda ks.cfg in text mode that installs from the CD-ROM (an iso install)', () => {
    expect(answer).toMatchObject({ installer: 'kickstart', fileName: 'ks.cfg', source: 'generated' });
    expect(commandsOf(c)).toContain('text');
    expect(commandsOf(c)).toContain('cdrom');
    expect(c).not.toMatch(/^url /m);
  });

  it('sets the root password crypted, never plain', () => {
    expectCryptedRoot(c, 'changeme-at-first-boot');
  });

  it('wipes the whole 12 GiB disk: platform partition, 768 MiB swap, growing xfs root', () => {
    const commands = commandsOf(c);
    expect(commands).toEqual(expect.arrayContaining(['zerombr', 'clearpart --all --initlabel --drives=vda', 'reqpart']));
    expect(lineStarting(c, 'part swap ')).toBe('part swap --fstype=swap --size=768 --ondisk=vda');
    expect(lineStarting(c, 'part / ')).toBe('part / --fstype=xfs --size=10880 --grow --ondisk=vda');
    expect(c).toContain('# the whole disk (12288 MiB)');
    expect(c).not.toMatch(/^autopart/m);
  });

  it('boots from the disk with the serial console, uses DHCP, and powers off as its last command', () => {
    expect(lineStarting(c, 'bootloader ')).toBe('bootloader --location=mbr --append="console=ttyS0"');
    expect(lineStarting(c, 'network ')).toMatch(/^network --bootproto=dhcp /);
    expect(commandsOf(c).at(-1)).toBe('poweroff');
    expect(c).not.toMatch(/^(reboot|halt|shutdown)\b/m);
  });

  it('installs @core, openssh-server and the template packages, and has no %post', () => {
    expect(packagesOf(c)).toEqual(['@core', 'openssh-server', 'qemu-guest-agent', 'tmux']);
    expect(c).not.toContain('%post');
  });
});

describe('the RHEL 9 example as a kickstart', () => {
  const c = generateKickstart(example('rhel-9')).content;

  it('reads RHEL-9 + version 4 as RHEL 9.4 and installs from the DVD', () => {
    expect(identifyDistro(example('rhel-9').os)).toMatchObject({ family: 'redhat', major: 9, minor: 4, label: 'RHEL 9.4' });
    expect(c).toContain('# template: rhel-9-base — RHEL 9.4 x86_64');
    expect(commandsOf(c)).toContain('cdrom');
  });

  it('uses the repository for the install only (persisted=no) and verifies its TLS certificate (sslverify=yes)', () => {
    expect(lineStarting(c, 'repo ')).toBe('repo --name="internal-tools" --baseurl=https://repo.example.com/rhel9/tools/x86_64/');
  });

  it('sizes 20 GiB: 1280 MiB swap and a root from 18560 MiB', () => {
    expect(lineStarting(c, 'part swap ')).toBe('part swap --fstype=swap --size=1280 --ondisk=vda');
    expect(lineStarting(c, 'part / ')).toBe('part / --fstype=xfs --size=18560 --grow --ondisk=vda');
    expect(packagesOf(c)).toEqual(['@core', 'openssh-server', 'cloud-init', 'tuned']);
    expectCryptedRoot(c, 'changeme-at-first-boot');
  });
});

describe('kickstarts for other inputs', () => {
  it('installs from the tree of a url install', () => {
    const c = generateKickstart(template({ name: 'CentOS-Stream', version: '9', install: '<install type="url"><url>http://mirror.stream.centos.org/9-stream/BaseOS/x86_64/os/</url></install>' })).content;
    expect(lineStarting(c, 'url ')).toBe('url --url="http://mirror.stream.centos.org/9-stream/BaseOS/x86_64/os/"');
    expect(commandsOf(c)).not.toContain('cdrom');
  });

  it('knows the Red Hat family names Oz uses', () => {
    for (const [name, version, label] of [
      ['RHEL-8', '10', 'RHEL 8.10'],
      ['RHEL', '9.4', 'RHEL 9.4'],
      ['CentOS-9', 'Stream', 'CentOS 9'],
      ['CentOS-Stream', '9', 'CentOS Stream 9'],
      ['RHEL-7', 'U9', 'RHEL 7.9'],
      ['Fedora', '40', 'Fedora 40'],
    ] as const) {
      expect(identifyDistro({ name, version }).label).toBe(label);
      expect(generateKickstart(template({ name, version })).installer).toBe('kickstart');
    }
    expect(() => generateKickstart(template({ name: 'RHEL-6', version: '10' }))).toThrow(expect.objectContaining({ code: 'unsupported_version' }));
    expect(() => generateKickstart(example('debian-12'))).toThrow(expect.objectContaining({ code: 'unsupported_os' }));
  });

  it('honours sslverify (--noverifyssl when no) and persisted (--install keeps the repository in the image)', () => {
    const c = generateKickstart(
      template({
        name: 'Fedora',
        version: '40',
        extra: `<repositories>
          <repository name="defaults"><url>https://a.example.com/repo/</url></repository>
          <repository name="strict temp"><url>https://b.example.com/repo/</url><persisted>no</persisted><sslverify>yes</sslverify></repository>
          <repository name="plain"><url>http://c.example.com/repo/</url><persisted>yes</persisted><sslverify>false</sslverify></repository>
        </repositories>`,
      }),
    ).content;
    const repos = linesOf(c).filter((l) => l.startsWith('repo '));
    expect(repos).toEqual([
      'repo --name="defaults" --baseurl=https://a.example.com/repo/ --noverifyssl --install',
      'repo --name="strict-temp" --baseurl=https://b.example.com/repo/',
      'repo --name="plain" --baseurl=http://c.example.com/repo/ --noverifyssl --install',
    ]);
  });

  it('generates a root password when the template has none', () => {
    const answer = generateKickstart(template({ name: 'Fedora', version: '40', rootpw: null }));
    expect(answer.rootPassword?.generated).toBe(true);
    expectCryptedRoot(answer.content, answer.rootPassword!.secret.reveal());
  });

  it('sizes to the default 10 GiB without <disk>, or leaves the layout to autopart', () => {
    const c = generateKickstart(template({ name: 'Fedora', version: '40' })).content;
    expect(lineStarting(c, 'part swap ')).toBe('part swap --fstype=swap --size=640 --ondisk=vda');
    expect(lineStarting(c, 'part / ')).toBe('part / --fstype=xfs --size=8960 --grow --ondisk=vda');
    const auto = generateKickstart(template({ name: 'Fedora', version: '40' }), { partitioning: 'auto', diskDevice: '/dev/sda' }).content;
    expect(lineStarting(auto, 'autopart')).toBe('autopart --type=plain --nohome');
    expect(lineStarting(auto, 'clearpart ')).toBe('clearpart --all --initlabel --drives=sda');
    expect(auto).not.toMatch(/^part /m);
  });

  it('refuses repository and install URLs that would break out of their line', () => {
    expect(() => generateKickstart(template({ name: 'Fedora', version: '40', extra: '<repositories><repository name="r"><url>http://x/ --install --cost=0</url></repository></repositories>' }))).toThrow(
      expect.objectContaining({ code: 'repository_invalid' }),
    );
    expect(() => generateKickstart(template({ name: 'Fedora', version: '40', install: '<install type="url"><url>http://x/"  y</url></install>' }))).toThrow(
      expect.objectContaining({ code: 'mirror_invalid' }),
    );
  });
});
