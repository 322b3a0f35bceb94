import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runProcess } from '../../src/engine/process.js';
import { guestJob } from '../../src/os/debian/guest-job.js';
import { createDebianPlugin } from '../../src/os/debian/plugin.js';
import { isUnverified, packagesInGuest, parseSourceLine, placeRepositories, unsignedRepositoryProblem } from '../../src/os/debian/repositories.js';
import type { RunOptions, StepContext } from '../../src/os/plugin.js';
import { parseTdlOrThrow, type Template } from '../../src/tdl/index.js';
import { file, tool } from '../tools.js';
import { describeWithTools } from '../tools.js';
import { example } from './helpers.js';

/**
 * What of a Debian template reaches the build host: which repositories the
 * host bootstrap may read (only what the distribution's key verifies), and
 * how the install step writes into a tree that a package or a template made
 * hostile (symlinks out of it). Nothing outside the tree may change.
 */

const repoXml = (repos: { name: string; url: string; signed?: boolean }[]) =>
  `<repositories>${repos.map((r) => `<repository name="${r.name}"><url>${r.url}</url>${r.signed === undefined ? '' : `<signed>${r.signed}</signed>`}</repository>`).join('')}</repositories>`;

function template(extra = '', size = '4GiB'): Template {
  return parseTdlOrThrow(
    `<template><name>host-safety</name><os><name>Debian</name><version>12</version><arch>x86_64</arch><install type="url"><url>http://deb.debian.org/debian</url></install><rootpw>Root-PW-4711</rootpw></os>${extra}<disk><size>${size}</size></disk></template>`,
  );
}

describe('where repositories are used', () => {
  it('keeps examples/debian-12.tdl entirely on the host: its signed Debian repository and its packages', () => {
    const t = example('debian-12');
    const placed = placeRepositories(t, 'bookworm');
    expect(placed.map((p) => [p.repo.name, p.where])).toEqual([['bookworm-updates', 'host']]);
    expect(packagesInGuest(t, placed)).toBe(false);
    expect(unsignedRepositoryProblem(t, 'bookworm', {})).toBeNull();
  });

  it.each([
    ['an unsigned repository', { url: 'http://repo.example.com/debian', signed: false }, 'it is not signed'],
    ['a signed one that waives verification', { url: 'deb [trusted=yes] http://repo.example.com/debian bookworm main', signed: true }, 'its options (trusted) change how apt verifies it'],
    ['a signed one with a key of its own', { url: 'deb [signed-by=/etc/apt/keyrings/x.gpg] http://repo.example.com/debian bookworm main', signed: true }, 'its options (signed-by) change how apt verifies it'],
    ['a signed file: repository', { url: 'deb file:///srv/repo ./', signed: true }, 'file: repositories are read in the guest only'],
    ['a signed cdrom: repository', { url: 'deb cdrom:[x]/ bookworm main', signed: true }, 'its options'],
  ])('sends %s to the guest', (_what, r, why) => {
    const t = template(repoXml([{ name: 'x', ...r }]));
    const [placed] = placeRepositories(t, 'bookworm');
    expect(placed!.where).toBe('guest');
    expect(placed!.why).toContain(why.replace(/its options$/, ''));
    expect(packagesInGuest(t, [placed!])).toBe(true);
  });

  it('keeps harmless options (arch, lang) on the host', () => {
    const t = template(repoXml([{ name: 'x', url: 'deb [arch=amd64 lang=none] https://deb.debian.org/debian bookworm-backports main', signed: true }]));
    expect(placeRepositories(t, 'bookworm')[0]!.where).toBe('host');
  });

  it('sends signed repositories to the guest when the template brings its own trusted key', () => {
    const t = template(`${repoXml([{ name: 'vendor', url: 'http://vendor.example.com/debian', signed: true }])}<files><file name="/etc/apt/trusted.gpg.d/vendor.asc">KEY</file></files>`);
    expect(placeRepositories(t, 'bookworm')[0]).toMatchObject({ where: 'guest', why: 'the template brings apt keys of its own, so it may be signed by one of them' });
  });

  it('refuses unsigned repositories unless parameters.allow_unsigned_repositories is true', () => {
    const t = template(repoXml([{ name: 'mine', url: 'http://repo.example.com/debian' }, { name: 'waived', url: 'deb [trusted=yes] http://x/debian bookworm main', signed: true }]));
    const refused = unsignedRepositoryProblem(t, 'bookworm', {});
    expect(refused).toMatchObject({ code: 'unsigned_repository_refused', details: { repositories: ['mine', 'waived'] } });
    expect(refused!.message).toContain('parameters.allow_unsigned_repositories=true');
    expect(unsignedRepositoryProblem(t, 'bookworm', { allow_unsigned_repositories: false })).not.toBeNull();
    expect(unsignedRepositoryProblem(t, 'bookworm', { allow_unsigned_repositories: true })).toBeNull();
    expect(unsignedRepositoryProblem(t, 'bookworm', { allow_unsigned_repositories: 'true' })).toBeNull();
  });

  it('reads source lines and the options that waive verification', () => {
    expect(parseSourceLine('deb [ arch=amd64 trusted=yes ] http://x/d bookworm main contrib')).toEqual({
      type: 'deb',
      options: new Map([['arch', 'amd64'], ['trusted', 'yes']]),
      uri: 'http://x/d',
      suite: 'bookworm',
      components: ['main', 'contrib'],
    });
    expect(parseSourceLine('http://x/d')).toBeNull();
    const repo = { name: 'r', url: 'deb [allow-insecure=yes] http://x/d s main', signed: true, persisted: true, sslverify: false };
    expect(isUnverified(repo, 'bookworm')).toBe(true);
    expect(isUnverified({ ...repo, url: 'deb [trusted=no] http://x/d s main' }, 'bookworm')).toBe(false);
  });

  it('writes guest repositories, then the template keys, before anything runs in the guest, and installs the packages there', () => {
    const t = template(`${repoXml([{ name: 'mine', url: 'http://repo.example.com/debian' }])}<packages><package name="tool"/></packages><files><file name="/etc/motd">hi</file><file name="/etc/apt/keyrings/k.gpg">KEY</file></files><commands><command name="c">true</command></commands>`);
    const job = guestJob(t, { runPrecommands: true, installInGuest: ['tool'], filesInGuest: true, fetched: new Map(), guestSources: [{ name: 'imagefactory-mine.list', text: 'deb [trusted=yes] http://repo.example.com/debian bookworm main\n' }] });
    const order = ['repository imagefactory-mine.list', 'file /etc/apt/keyrings/k.gpg', 'packages', 'file /etc/motd', 'command c'].map((label) => job.indexOf(`IFMARK begin "'${label}'`));
    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(job).toContain(Buffer.from('deb [trusted=yes] http://repo.example.com/debian bookworm main\n').toString('base64'));
  });
});

/** A tree as a bootstrap might leave it, made hostile: the paths the install step writes lead out of it by symlinks. */
function hostileTree(tree: string, outside: string): void {
  mkdirSync(join(tree, 'etc'), { recursive: true });
  mkdirSync(join(tree, 'boot'));
  writeFileSync(join(tree, 'boot/vmlinuz-6.1.0-99-cloud-amd64'), 'kernel');
  writeFileSync(join(tree, 'boot/initrd.img-6.1.0-99-cloud-amd64'), 'initrd');
  writeFileSync(join(tree, 'etc/shadow'), 'root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n', { mode: 0o640 });
  symlinkSync(join(outside, 'victim'), join(tree, 'etc/motd'));
  symlinkSync(join(outside, 'victim'), join(tree, 'etc/hostname'));
  symlinkSync(join(outside, 'fstab'), join(tree, 'etc/fstab'));
  symlinkSync(outside, join(tree, 'etc/network'));
  symlinkSync('../../../../../../../..' + outside, join(tree, 'etc/systemd'));
  mkdirSync(join(tree, 'var'));
  symlinkSync(outside, join(tree, 'var/www'));
  symlinkSync(join(outside, 'grub'), join(tree, 'boot/grub'));
}

function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      out.push(`${p} ${st.isSymbolicLink() ? `-> ${readlinkSync(p)}` : st.isDirectory() ? 'dir' : readFileSync(p, 'utf8')}`);
      if (st.isDirectory() && !st.isSymbolicLink()) walk(p);
    }
  };
  walk(dir);
  return out;
}

describeWithTools([tool('debugfs', ['-V']), tool('sfdisk', ['--version']), tool('mkfs.ext4', ['-V']), tool('grub-mkimage', ['--version']), file('/usr/lib/grub/i386-pc/boot.img', 'grub-pc-bin')], 'the install step on a hostile tree', () => {
  let base: string;
  let outside: string;
  beforeEach(() => {
    mkdirSync('/var/tmp/h11', { recursive: true });
    base = mkdtempSync('/var/tmp/h11/install-');
    outside = join(base, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'victim'), 'original');
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  async function install(t: Template, parameters: Record<string, unknown> = {}) {
    const calls: { command: string; args: string[]; sources: Record<string, string> }[] = [];
    const log: string[] = [];
    const signal = new AbortController().signal;
    const workdir = join(base, 'work');
    mkdirSync(workdir);
    const ctx = {
      template: t,
      parameters,
      workdir,
      diskPath: join(base, 'disk.qcow2'),
      signal,
      log: (line: string) => log.push(line),
      progress: () => undefined,
      run: async (command: string, args: string[], options: RunOptions = {}) => {
        if (command !== 'mmdebstrap') return runProcess(command, args, { ...options, buildId: 'host-safety', signal, log: (l) => log.push(l) });
        // mmdebstrap stands in: record what it was asked (and the source files it would copy), leave a hostile tree.
        const sourcesDir = join(workdir, 'apt-sources');
        const sources = Object.fromEntries(existsSync(sourcesDir) ? readdirSync(sourcesDir).map((n) => [n, readFileSync(join(sourcesDir, n), 'utf8')]) : []);
        calls.push({ command, args, sources });
        hostileTree(args.at(-2)!, outside);
        return { code: 0, stdout: '', stderr: '' };
      },
      runGuest: async () => {
        throw new Error('no guest here');
      },
      report: () => undefined,
    } as unknown as StepContext;
    const plugin = createDebianPlugin({ packageCache: null });
    await plugin.prepare.run(ctx);
    await plugin.install.run(ctx);
    return { calls, log, ctx };
  }

  it('writes the template files, the root password, the units and the boot files inside the tree only', async () => {
    const before = listing(outside);
    const t = template(
      `<files><file name="/etc/motd">motd of the template</file><file name="/var/www/html/index.html">page</file></files><packages><package name="jq"/></packages>${repoXml([{ name: 'updates', url: 'deb http://deb.debian.org/debian bookworm-updates main', signed: true }])}`,
      '64MiB',
    );
    const { calls } = await install(t);
    expect(listing(outside)).toEqual(before);
    // The bootstrap: the distribution's keyring only, the signed repository and the packages on the host.
    const args = calls[0]!.args;
    expect(args).toContain('--keyring=/usr/share/keyrings/debian-archive-keyring.gpg');
    expect(args.find((a) => a.startsWith('--include='))).toContain(',jq');
    expect(args).not.toContain('--skip=cleanup/apt/lists');
    expect(calls[0]!.sources).toEqual({ 'imagefactory-updates.list': 'deb http://deb.debian.org/debian bookworm-updates main\n' });
    expect(existsSync(join(base, 'work/apt-sources'))).toBe(false);
  });

  it('sets the root password as a SHA-512 crypt hash without running anything of the tree, and writes the files inside it', async () => {
    const t = template('<files><file name="/etc/motd">motd of the template</file><file name="/var/www/html/index.html">page</file></files>', '64MiB');
    await install(t);
    // The tree is gone once the disk is made: read what it held from the disk's filesystem.
    const inDisk = (path: string) => {
      const r = spawnSync('debugfs', ['-R', `cat ${path}`, `${join(base, 'work/disk.raw')}?offset=${2048 * 512}`], { encoding: 'utf8' });
      return r.stdout;
    };
    const root = inDisk('/etc/shadow').split('\n')[0]!;
    expect(root).toMatch(/^root:\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}:\d+:0:99999:7:::$/);
    expect(inDisk('/etc/shadow')).not.toContain('Root-PW-4711');
    expect(inDisk(`${outside}/victim`)).toBe('host-safety\n'); // /etc/hostname, through its link, inside the image
    expect(inDisk(`${outside}/html/index.html`)).toBe('page');
    expect(inDisk(`${outside}/system/imagefactory-customize.service`)).toContain('ExecStart=/usr/local/sbin/imagefactory-customize');
    expect(inDisk(`${outside}/grub/grub.cfg`)).toContain('menuentry');
    expect(readFileSync(join(outside, 'victim'), 'utf8')).toBe('original');
    expect(readdirSync(outside)).toEqual(['victim']);
  });

  it('keeps an unsigned repository and the packages away from the host bootstrap', async () => {
    const t = template(`<packages><package name="tool"/></packages>${repoXml([{ name: 'mine', url: 'http://repo.example.com/debian' }])}<files><file name="/etc/motd">x</file></files>`, '64MiB');
    await expect(install(t)).rejects.toMatchObject({ code: 'unsigned_repository_refused' });
    rmSync(join(base, 'work'), { recursive: true, force: true });
    const before = listing(outside);
    const { calls, log } = await install(t, { allow_unsigned_repositories: true });
    const args = calls[0]!.args;
    expect(args.find((a) => a.startsWith('--include='))).not.toContain('tool');
    // The guest installs next: apt's lists stay, so it only revalidates the mirror's index.
    expect(args).toContain('--skip=cleanup/apt/lists');
    expect(calls[0]!.sources).toEqual({});
    expect(args.join(' ')).not.toContain('repo.example.com');
    expect(log).toContain('repository mine: used in the guest only (it is not signed)');
    expect(listing(outside)).toEqual(before);
  });
});
