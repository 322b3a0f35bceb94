import { describe, expect, it } from 'vitest';
import { AnswerError, generatePreseed, sha512Crypt } from '../../src/os/answer/index.js';
import { example, lineStarting, linesOf, template } from './helpers.js';

const RECIPE_SWAP = /^(\d+) (\d+) (\d+) linux-swap /;
const RECIPE_ROOT = /^(\d+) (\d+) -1 ext4 .*mountpoint\{ \/ \} \.$/;

/** The expert recipe's swap and root lines, as numbers. */
function recipe(content: string): { swap: number[]; root: number[] } {
  const lines = linesOf(content);
  const swap = lines.map((l) => RECIPE_SWAP.exec(l)).find(Boolean);
  const root = lines.map((l) => RECIPE_ROOT.exec(l)).find(Boolean);
  if (!swap || !root) throw new Error(`no expert recipe in:\n${content}`);
  return { swap: swap.slice(1).map(Number), root: root.slice(1).map(Number) };
}

function expectCryptedRoot(content: string, password: string): void {
  const line = lineStarting(content, 'd-i passwd/root-password-crypted password ');
  const hash = line.split(' ').pop()!;
  expect(hash).toMatch(/^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
  expect(sha512Crypt(password, hash.split('$')[2]!)).toBe(hash);
  expect(content).not.toContain(password);
  expect(content).not.toMatch(/root-password password|root-password-again/);
}

describe('the Debian 12 example as a preseed', () => {
  const answer = generatePreseed(example('debian-12'));
  const c = answer.content;

  it('is the preseed.cfg of debian-installer', () => {
    expect(answer).toMatchObject({ installer: 'preseed', fileName: 'preseed.cfg', source: 'generated', companions: [] });
  });

  it('installs from the template url, split into host and directory, with the suite of Debian 12', () => {
    expect(lineStarting(c, 'd-i mirror/protocol ')).toBe('d-i mirror/protocol string http');
    expect(lineStarting(c, 'd-i mirror/http/hostname ')).toBe('d-i mirror/http/hostname string deb.debian.org');
    expect(lineStarting(c, 'd-i mirror/http/directory ')).toBe('d-i mirror/http/directory string /debian');
    expect(lineStarting(c, 'd-i mirror/suite ')).toBe('d-i mirror/suite string bookworm');
    expect(lineStarting(c, 'd-i mirror/country ')).toBe('d-i mirror/country string manual');
  });

  it('sets the root password crypted with SHA-512, never in plain text, and creates no user', () => {
    expectCryptedRoot(c, 'changeme-at-first-boot');
    expect(answer.rootPassword?.generated).toBe(false);
    expect(lineStarting(c, 'd-i passwd/root-login ')).toBe('d-i passwd/root-login boolean true');
    expect(lineStarting(c, 'd-i passwd/make-user ')).toBe('d-i passwd/make-user boolean false');
  });

  it('uses the whole 4 GiB disk: 256 MiB swap (1/16) and a root that grows to the end', () => {
    expect(lineStarting(c, 'd-i partman-auto/disk ')).toBe('d-i partman-auto/disk string /dev/vda');
    expect(lineStarting(c, 'd-i partman-auto/method ')).toBe('d-i partman-auto/method string regular');
    expect(lineStarting(c, 'd-i partman-auto/choose_recipe ')).toBe('d-i partman-auto/choose_recipe select imagefactory');
    expect(c).toContain('# disk 4096 MiB: swap 256 MiB, root at least 3200 MiB');
    // partman counts in MB (10^6 bytes): 256 MiB = 268 MB, 3200 MiB = 3355 MB.
    expect(recipe(c)).toEqual({ swap: [268, 268, 268], root: [3355, 3355] });
    expect(c).toContain('d-i partman/confirm_nooverwrite boolean true');
  });

  it('installs a minimal system with openssh-server and the template packages', () => {
    expect(lineStarting(c, 'tasksel tasksel/first ')).toBe('tasksel tasksel/first multiselect');
    expect(lineStarting(c, 'd-i pkgsel/include ')).toBe('d-i pkgsel/include string openssh-server nginx-light curl jq');
  });

  it('adds the template repository as an apt line, as written', () => {
    expect(lineStarting(c, 'd-i apt-setup/local0/repository ')).toBe('d-i apt-setup/local0/repository string deb http://deb.debian.org/debian bookworm-updates main');
    expect(c).not.toContain('preseed/late_command');
  });

  it('puts GRUB on the disk, the serial console on the kernel line, and powers off at the end', () => {
    expect(lineStarting(c, 'd-i grub-installer/bootdev ')).toBe('d-i grub-installer/bootdev string /dev/vda');
    expect(lineStarting(c, 'd-i debian-installer/add-kernel-opts ')).toContain('console=ttyS0,115200n8');
    expect(lineStarting(c, 'd-i finish-install/reboot_in_progress ')).toBe('d-i finish-install/reboot_in_progress note');
    expect(lineStarting(c, 'd-i debian-installer/exit/poweroff ')).toBe('d-i debian-installer/exit/poweroff boolean true');
  });

  it('is made of preseed lines only: comments, continuations, or owner question type value', () => {
    const logical = c.replace(/\\\n/g, ' ').split('\n').filter((l) => l.trim() && !l.startsWith('#'));
    for (const line of logical) expect(line).toMatch(/^(d-i|tasksel|popularity-contest) [a-z0-9-]+\/[A-Za-z0-9_/-]+ (string|boolean|select|multiselect|password|note)( |$)/);
  });
});

describe('preseeds for other releases and inputs', () => {
  it('maps Debian 10–13 to their suites and accepts point releases', () => {
    for (const [version, suite] of [
      ['10', 'buster'],
      ['11', 'bullseye'],
      ['12.5', 'bookworm'],
      ['13', 'trixie'],
    ] as const) {
      const c = generatePreseed(template({ name: 'Debian', version })).content;
      expect(lineStarting(c, 'd-i mirror/suite ')).toBe(`d-i mirror/suite string ${suite}`);
    }
    expect(() => generatePreseed(template({ name: 'Debian', version: '9' }))).toThrow(/10 \(buster\).*got "9"/);
  });

  it('maps Ubuntu 20.04, 22.04 and 24.04 to focal, jammy and noble (the Ubuntu example, 10 GiB by default)', () => {
    const c = generatePreseed(example('ubuntu-22.04')).content;
    expect(lineStarting(c, 'd-i mirror/http/hostname ')).toBe('d-i mirror/http/hostname string archive.ubuntu.com');
    expect(lineStarting(c, 'd-i mirror/http/directory ')).toBe('d-i mirror/http/directory string /ubuntu');
    expect(lineStarting(c, 'd-i mirror/suite ')).toBe('d-i mirror/suite string jammy');
    // No <disk>: 10 GiB; swap 640 MiB = 671 MB, root 10240 - 640 - 640 = 8960 MiB = 9395 MB.
    expect(recipe(c)).toEqual({ swap: [671, 671, 671], root: [9395, 9395] });
    expect(lineStarting(c, 'd-i pkgsel/include ')).toBe('d-i pkgsel/include string openssh-server cloud-init');
    expectCryptedRoot(c, 'changeme-at-first-boot');
    for (const [version, suite] of [
      ['20.04', 'focal'],
      ['24.04', 'noble'],
    ] as const) {
      expect(lineStarting(generatePreseed(template({ name: 'Ubuntu', version })).content, 'd-i mirror/suite ')).toBe(`d-i mirror/suite string ${suite}`);
    }
  });

  it('splits an https mirror with a port and a trailing slash', () => {
    const c = generatePreseed(template({ name: 'Debian', version: '12', install: '<install type="url"><url>https://mirror.example.com:8443/pub/debian/</url></install>' })).content;
    expect(lineStarting(c, 'd-i mirror/protocol ')).toBe('d-i mirror/protocol string https');
    expect(lineStarting(c, 'd-i mirror/https/hostname ')).toBe('d-i mirror/https/hostname string mirror.example.com:8443');
    expect(lineStarting(c, 'd-i mirror/https/directory ')).toBe('d-i mirror/https/directory string /pub/debian');
  });

  it('uses the primary mirror for packages when installing from an ISO', () => {
    const c = generatePreseed(template({ name: 'Debian', version: '12', install: '<install type="iso"><iso>http://cdimage.example.com/debian-12.5.0-amd64-netinst.iso</iso></install>' })).content;
    expect(lineStarting(c, 'd-i mirror/http/hostname ')).toBe('d-i mirror/http/hostname string deb.debian.org');
    expect(c).not.toContain('cdimage.example.com');
    const own = generatePreseed(template({ name: 'Debian', version: '12', install: '<install type="iso"><iso>http://x/d.iso</iso></install>' }), { isoMirror: 'http://local.mirror/debian' }).content;
    expect(lineStarting(own, 'd-i mirror/http/hostname ')).toBe('d-i mirror/http/hostname string local.mirror');
  });

  it('generates a root password when the template has none, and only reveals it through the secret', () => {
    const answer = generatePreseed(template({ name: 'Debian', version: '12', rootpw: null }));
    expect(answer.rootPassword?.generated).toBe(true);
    const password = answer.rootPassword!.secret.reveal();
    expect(password).toMatch(/^[A-Za-z0-9]{24}$/);
    expectCryptedRoot(answer.content, password);
    expect(JSON.stringify(answer)).not.toContain(password);
    // A configured password counts as given, not generated.
    const configured = generatePreseed(template({ name: 'Debian', version: '12', rootpw: null }), { rootPassword: 'from-config' });
    expect(configured.rootPassword?.generated).toBe(false);
    expectCryptedRoot(configured.content, 'from-config');
  });

  it('sizes the recipe to the disk: swap is 1/16 between 256 MiB and 2 GiB', () => {
    const sized = (size: string) => recipe(generatePreseed(template({ name: 'Debian', version: '12', extra: `<disk><size>${size}</size></disk>` })).content);
    expect(sized('20GiB').swap[0]).toBe(1342); // 1280 MiB
    expect(sized('100GiB').swap[0]).toBe(2147); // capped at 2048 MiB
    expect(sized('100GiB').root[0]).toBe(Math.floor(((102400 - 2048 - 640) * 1048576) / 1e6));
    expect(() => generatePreseed(template({ name: 'Debian', version: '12', extra: '<disk><size>1GiB</size></disk>' }))).toThrow(
      expect.objectContaining({ code: 'disk_too_small' }),
    );
  });

  it('can leave the layout to partman (atomic recipe)', () => {
    const c = generatePreseed(example('debian-12'), { partitioning: 'auto' }).content;
    expect(lineStarting(c, 'd-i partman-auto/choose_recipe ')).toBe('d-i partman-auto/choose_recipe select atomic');
    expect(c).not.toContain('expert_recipe');
  });

  it('completes bare repository URLs, trusts unsigned ones, relaxes TLS for sslverify=no, and removes unpersisted ones at the end', () => {
    const c = generatePreseed(
      template({
        name: 'Debian',
        version: '12',
        extra: `<repositories>
          <repository name="bare"><url>https://repo.example.com/debian</url></repository>
          <repository name="signed-line"><url>deb [arch=amd64] http://repo.example.com/extra bookworm contrib</url><signed>yes</signed><sslverify>yes</sslverify></repository>
          <repository name="temporary"><url>deb http://build.example.com/tools bookworm main</url><signed>yes</signed><persisted>no</persisted></repository>
        </repositories>`,
      }),
    ).content;
    expect(lineStarting(c, 'd-i apt-setup/local0/repository ')).toBe('d-i apt-setup/local0/repository string deb [trusted=yes] https://repo.example.com/debian bookworm main');
    expect(lineStarting(c, 'd-i apt-setup/local1/repository ')).toBe('d-i apt-setup/local1/repository string deb [arch=amd64] http://repo.example.com/extra bookworm contrib');
    expect(lineStarting(c, 'd-i apt-setup/local2/repository ')).toBe('d-i apt-setup/local2/repository string deb http://build.example.com/tools bookworm main');
    expect(lineStarting(c, 'd-i debian-installer/allow_unauthenticated_ssl ')).toBe('d-i debian-installer/allow_unauthenticated_ssl boolean true');
    expect(lineStarting(c, 'd-i preseed/late_command ')).toBe(
      "d-i preseed/late_command string in-target sed -i '\\|^deb http://build\\.example\\.com/tools bookworm main$|d' /etc/apt/sources.list",
    );
  });

  it('does not relax TLS when every https repository verifies', () => {
    const c = generatePreseed(template({ name: 'Debian', version: '12', extra: '<repositories><repository name="r"><url>https://r.example.com/debian</url><sslverify>true</sslverify></repository></repositories>' })).content;
    expect(c).not.toContain('allow_unauthenticated_ssl');
  });

  it('refuses input that would inject preseed lines, and other operating systems', () => {
    expect(() => generatePreseed(template({ name: 'Debian', version: '12', extra: `<packages><package name="vim&#10;d-i passwd/make-user boolean true"/></packages>` }))).toThrow(
      expect.objectContaining({ code: 'package_invalid' }),
    );
    expect(() => generatePreseed(template({ name: 'Debian', version: '12', install: '<install type="url"><url>nfs://server/debian</url></install>' }))).toThrow(
      expect.objectContaining({ code: 'mirror_invalid' }),
    );
    expect(() => generatePreseed(example('fedora-40'))).toThrow(AnswerError);
    expect(() => generatePreseed(template({ name: 'Ubuntu', version: '23.10' }))).toThrow(expect.objectContaining({ code: 'unsupported_version' }));
  });
});
