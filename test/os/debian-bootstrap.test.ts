import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aptTlsOptions, basePackages, mmdebstrapArgs, repositoryFile, sourceLine, writeSourceFiles, type BootstrapArgs } from '../../src/os/debian/bootstrap.js';
import { KERNEL_FLAVOURS, releaseOf, type Release } from '../../src/os/debian/releases.js';
import { parseTdl, type Repository, type Template } from '../../src/tdl/index.js';
import { tempDir } from './helpers.js';

let dir: { path: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  dir = await tempDir('debian-bootstrap');
});
afterAll(async () => dir.cleanup());

/** A Debian/Ubuntu template with `extra` XML inside <template>, parsed by the real TDL parser. */
function debianTemplate(opts: { name?: string; version?: string; mirror?: string; extra?: string } = {}): Template {
  const xml = `<template version="1.0">
  <name>bootstrap-test</name>
  <os>
    <name>${opts.name ?? 'Debian'}</name><version>${opts.version ?? '12'}</version><arch>x86_64</arch>
    <install type="url"><url>${opts.mirror ?? 'http://deb.debian.org/debian'}</url></install>
    <rootpw>changeme</rootpw>
  </os>
  ${opts.extra ?? ''}
</template>`;
  const r = parseTdl(xml);
  if (!r.ok) throw new Error(`invalid test template: ${JSON.stringify(r.errors)}`);
  return r.template;
}

function repositoriesXml(repos: Array<{ name: string; url: string; signed?: boolean; persisted?: boolean; sslverify?: boolean }>): string {
  const flag = (tag: string, v: boolean | undefined) => (v === undefined ? '' : `<${tag}>${v ? 'yes' : 'no'}</${tag}>`);
  const body = repos
    .map((r) => `<repository name="${r.name}"><url>${r.url}</url>${flag('signed', r.signed)}${flag('persisted', r.persisted)}${flag('sslverify', r.sslverify)}</repository>`)
    .join('\n');
  return `<repositories>${body}</repositories>`;
}

function releaseFor(t: Template): Release {
  const r = releaseOf(t.os.name, t.os.version);
  if (!r) throw new Error(`no release for ${t.os.name} ${t.os.version}`);
  return r;
}

function repo(over: Partial<Repository>): Repository {
  return { name: 'r', url: 'http://repo.example.com/debian', signed: false, persisted: true, sslverify: false, ...over };
}

const SOURCES = '/w/apt-sources';

/** mmdebstrap's arguments with every template repository on the host, no keyring pinned and sources under /w/apt-sources unless given. */
function bootstrapArgs(a: Omit<BootstrapArgs, 'hostRepositories' | 'keyring' | 'sourcesDir'> & Partial<BootstrapArgs>): string[] {
  return mmdebstrapArgs({ hostRepositories: a.template.repositories, keyring: null, sourcesDir: SOURCES, ...a });
}

/** The value of every `--NAME=` argument, in order. */
function valuesOf(args: string[], name: string): string[] {
  return args.filter((a) => a.startsWith(`--${name}=`)).map((a) => a.slice(name.length + 3));
}

/** Runs a hook string the way mmdebstrap does: `sh -c HOOK sh ROOT`. */
function runHook(hook: string, root: string): { status: number; stderr: string } {
  const r = spawnSync('sh', ['-c', hook, 'sh', root], { encoding: 'utf8' });
  return { status: r.status ?? -1, stderr: r.stderr };
}

describe('base packages', () => {
  const rest = ['systemd-sysv', 'udev', 'ifupdown', 'isc-dhcp-client', 'openssh-server'];

  it('knows the cloud and generic kernel flavours', () => {
    expect([...KERNEL_FLAVOURS]).toEqual(['cloud', 'generic']);
  });

  it.each([
    ['Debian', '12', 'cloud', 'linux-image-cloud-amd64'],
    ['Debian', '11', 'generic', 'linux-image-amd64'],
    ['Ubuntu', '22.04', 'cloud', 'linux-image-virtual'],
    ['Ubuntu', '24.04', 'generic', 'linux-image-generic'],
  ] as const)('%s %s with the %s kernel boots %s with systemd, udev, ifupdown, dhcp and ssh', (name, version, flavour, kernel) => {
    const release = releaseOf(name, version)!;
    expect(basePackages(release, 'x86_64', flavour)).toEqual([kernel, ...rest]);
  });

  it.each([
    ['Debian', '12', 'linux-image-cloud-amd64'],
    ['Ubuntu', '22.04', 'linux-image-virtual'],
  ])('%s %s boots the cloud kernel (%s) by default', (name, version, kernel) => {
    expect(basePackages(releaseOf(name, version)!, 'x86_64')).toEqual([kernel, ...rest]);
  });
});

describe('mmdebstrap arguments', () => {
  it('for Debian 12 without repositories or cache: root mode, minbase, amd64, the packages once each, then suite, tree and mirror', () => {
    const t = debianTemplate();
    const release = releaseFor(t);
    const packages = [...basePackages(release, 'x86_64'), 'curl', 'jq', 'curl', 'openssh-server'];
    const args = bootstrapArgs({ template: t, release, mirror: 'http://deb.debian.org/debian', tree: '/w/tree', packageCache: null, packages, keyring: '/usr/share/keyrings/debian-archive-keyring.gpg' });
    expect(args).toEqual([
      '--mode=unshare',
      '--variant=minbase',
      '--architectures=amd64',
      '--include=linux-image-cloud-amd64,systemd-sysv,udev,ifupdown,isc-dhcp-client,openssh-server,curl,jq',
      '--keyring=/usr/share/keyrings/debian-archive-keyring.gpg',
      `--essential-hook=chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs && printf '#!/bin/sh\\nexit 0\\n' > "$1/usr/sbin/update-initramfs" && chmod 755 "$1/usr/sbin/update-initramfs"`,
      '--customize-hook=rm -f "$1/usr/sbin/update-initramfs" && chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs && chroot "$1" update-initramfs -c -k all',
      'bookworm',
      '/w/tree',
      'http://deb.debian.org/debian',
    ]);
  });

  it.each([
    ['Ubuntu', '22.04', 'jammy'],
    ['Ubuntu', '24.04', 'noble'],
  ])('for %s %s: suite %s with main and universe', (name, version, suite) => {
    const t = debianTemplate({ name, version, mirror: 'http://archive.ubuntu.com/ubuntu' });
    const release = releaseFor(t);
    const args = bootstrapArgs({ template: t, release, mirror: 'http://archive.ubuntu.com/ubuntu', tree: '/w/tree', packageCache: null, packages: basePackages(release, 'x86_64') });
    expect(valuesOf(args, 'components')).toEqual(['main,universe']);
    expect(valuesOf(args, 'include')).toEqual(['linux-image-virtual,systemd-sysv,udev,ifupdown,isc-dhcp-client,openssh-server']);
    expect(args.slice(-3)).toEqual([suite, '/w/tree', 'http://archive.ubuntu.com/ubuntu']);
  });

  it('gives Debian no --components (mmdebstrap defaults to main)', () => {
    const t = debianTemplate();
    const args = bootstrapArgs({ template: t, release: releaseFor(t), mirror: 'http://m/debian', tree: '/t', packageCache: null, packages: ['a'] });
    expect(valuesOf(args, 'components')).toEqual([]);
  });

  it('puts the options before the three positional arguments', () => {
    const t = debianTemplate({ extra: repositoriesXml([{ name: 'x', url: 'https://secure.example.org/debian' }]) });
    const args = bootstrapArgs({ template: t, release: releaseFor(t), mirror: 'http://m/debian', tree: '/t', packageCache: '/cache', packages: ['a'] });
    expect(args.slice(0, -3).every((a) => a.startsWith('--'))).toBe(true);
    expect(args.slice(-3)).toEqual(['bookworm', '/t', 'http://m/debian']);
  });
});

describe('apt source lines', () => {
  it.each<[string, Partial<Repository>, string]>([
    ['a signed source line as is', { url: 'deb http://deb.debian.org/debian bookworm-updates main', signed: true }, 'deb http://deb.debian.org/debian bookworm-updates main'],
    ['an unsigned source line trusted', { url: 'deb http://repo.example.com/debian stable main contrib' }, 'deb [trusted=yes] http://repo.example.com/debian stable main contrib'],
    ['an unsigned deb-src line trusted', { url: 'deb-src http://repo.example.com/debian stable main' }, 'deb-src [trusted=yes] http://repo.example.com/debian stable main'],
    ['a signed bare URL with the suite and main', { url: 'http://repo.example.com/debian', signed: true }, 'deb http://repo.example.com/debian bookworm main'],
    ['an unsigned bare URL with the suite, main and trust', { url: 'http://repo.example.com/debian' }, 'deb [trusted=yes] http://repo.example.com/debian bookworm main'],
    ['a signed source line with options as is', { url: 'deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://repo.example.com/debian stable main', signed: true }, 'deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://repo.example.com/debian stable main'],
    ['an unsigned source line with options trusted inside its brackets', { url: 'deb [arch=amd64] http://x stable main' }, 'deb [trusted=yes arch=amd64] http://x stable main'],
    ['an unsigned deb-src line with options trusted inside its brackets', { url: 'deb-src [ arch=amd64 lang=none ] http://x stable main' }, 'deb-src [trusted=yes arch=amd64 lang=none ] http://x stable main'],
    ['an unsigned source line that already says trusted= as is', { url: 'deb [arch=amd64 trusted=no] http://x stable main' }, 'deb [arch=amd64 trusted=no] http://x stable main'],
    ['an unsigned source line with only trusted=yes as is', { url: 'deb [trusted=yes] http://x stable main' }, 'deb [trusted=yes] http://x stable main'],
    ['white space around the URL trimmed', { url: '  http://repo.example.com/debian \n', signed: true }, 'deb http://repo.example.com/debian bookworm main'],
    ['"debian" at the start of a bare URL not taken for a source line', { url: 'debian.example.com/debian', signed: true }, 'deb debian.example.com/debian bookworm main'],
  ])('writes %s', (_what, over, expected) => {
    expect(sourceLine(repo(over), 'bookworm')).toBe(expected);
  });

  it.each([
    ['updates', '/etc/apt/sources.list.d/imagefactory-updates.list'],
    ['my repo/x', '/etc/apt/sources.list.d/imagefactory-my_repo_x.list'],
    ['../../etc/passwd', '/etc/apt/sources.list.d/imagefactory-.._.._etc_passwd.list'],
    ['ok.name_1-2', '/etc/apt/sources.list.d/imagefactory-ok.name_1-2.list'],
  ])('puts repository %j in %s', (name, file) => {
    expect(repositoryFile(repo({ name }))).toBe(file);
  });
});

describe('TLS verification', () => {
  it('turns peer verification off only for https hosts of repositories with sslverify off, once per host', () => {
    const repos = [
      repo({ name: 'a', url: 'https://insecure.example.org/debian', sslverify: false }),
      repo({ name: 'b', url: 'deb [trusted=yes] https://insecure.example.org/other stable main', sslverify: false }),
      repo({ name: 'c', url: 'https://checked.example.org/debian', sslverify: true }),
      repo({ name: 'd', url: 'http://plain.example.org/debian', sslverify: false }),
      repo({ name: 'e', url: 'deb https://second.example.net/ubuntu jammy main', sslverify: false }),
    ];
    expect(aptTlsOptions(repos)).toEqual([
      'Acquire::https::insecure.example.org::Verify-Peer "false"',
      'Acquire::https::insecure.example.org::Verify-Host "false"',
      'Acquire::https::second.example.net::Verify-Peer "false"',
      'Acquire::https::second.example.net::Verify-Host "false"',
    ]);
  });

  it('keys the options by host name alone: no port, no credentials, lower case', () => {
    const repos = [
      repo({ name: 'a', url: 'https://repo.example.com:8443/debian', sslverify: false }),
      repo({ name: 'b', url: 'deb https://user:pw@REPO.Example.com/debian stable main', sslverify: false }),
    ];
    expect(aptTlsOptions(repos)).toEqual(['Acquire::https::repo.example.com::Verify-Peer "false"', 'Acquire::https::repo.example.com::Verify-Host "false"']);
  });

  it('passes them to mmdebstrap as --aptopt, and none when every repository verifies', () => {
    const insecure = debianTemplate({
      extra: repositoriesXml([
        { name: 'insecure', url: 'https://insecure.example.org/debian', sslverify: false },
        { name: 'checked', url: 'https://checked.example.org/debian', sslverify: true },
        { name: 'plain', url: 'http://plain.example.org/debian' },
      ]),
    });
    const args = bootstrapArgs({ template: insecure, release: releaseFor(insecure), mirror: 'http://m/debian', tree: '/t', packageCache: null, packages: ['a'] });
    expect(valuesOf(args, 'aptopt')).toEqual(['Acquire::https::insecure.example.org::Verify-Peer "false"', 'Acquire::https::insecure.example.org::Verify-Host "false"']);

    const checked = debianTemplate({ extra: repositoriesXml([{ name: 'checked', url: 'https://checked.example.org/debian', sslverify: true }]) });
    expect(valuesOf(bootstrapArgs({ template: checked, release: releaseFor(checked), mirror: 'http://m/debian', tree: '/t', packageCache: null, packages: ['a'] }), 'aptopt')).toEqual([]);
  });
});

describe('repository setup hooks, run by sh', () => {
  const repos = [
    { name: 'updates', url: 'deb http://deb.debian.org/debian bookworm-updates main', signed: true },
    { name: 'local tools', url: 'http://tools.example.com/debian' },
    { name: 'quoted', url: "deb http://q.example.com/it's bookworm main" },
  ];

  it('copy one file per repository, named after it, holding its source line (never the line itself: mmdebstrap prints its hooks)', async () => {
    const t = debianTemplate({ extra: repositoriesXml([...repos, { name: 'private', url: 'deb http://user:s3cret@p.example.com/debian bookworm main', signed: true }]) });
    const release = releaseFor(t);
    const sourcesDir = join(dir.path, 'apt sources');
    await writeSourceFiles(sourcesDir, t.repositories, release.suite);
    expect((await stat(join(sourcesDir, 'imagefactory-private.list'))).mode & 0o777).toBe(0o600);
    const hooks = valuesOf(bootstrapArgs({ template: t, release, mirror: 'http://m/debian', tree: '/t', packageCache: null, packages: ['a'], sourcesDir }), 'setup-hook');
    expect(hooks).toHaveLength(4);
    expect(hooks.join(' ')).not.toContain('s3cret');
    const root = join(dir.path, 'repo root');
    await mkdir(root);
    for (const hook of hooks) {
      const r = runHook(hook, root);
      expect(r.status, r.stderr).toBe(0);
    }
    const listDir = join(root, 'etc/apt/sources.list.d');
    expect((await readdir(listDir)).sort()).toEqual(['imagefactory-local_tools.list', 'imagefactory-private.list', 'imagefactory-quoted.list', 'imagefactory-updates.list']);
    expect(await readFile(join(listDir, 'imagefactory-updates.list'), 'utf8')).toBe('deb http://deb.debian.org/debian bookworm-updates main\n');
    expect(await readFile(join(listDir, 'imagefactory-local_tools.list'), 'utf8')).toBe('deb [trusted=yes] http://tools.example.com/debian bookworm main\n');
    expect(await readFile(join(listDir, 'imagefactory-quoted.list'), 'utf8')).toBe("deb [trusted=yes] http://q.example.com/it's bookworm main\n");
  });

  it('use the release suite for bare URLs of Ubuntu templates', async () => {
    const t = debianTemplate({ name: 'Ubuntu', version: '24.04', extra: repositoriesXml([{ name: 'ppa', url: 'http://ppa.example.com/ubuntu', signed: true }]) });
    const sourcesDir = join(dir.path, 'ubuntu sources');
    await writeSourceFiles(sourcesDir, t.repositories, releaseFor(t).suite);
    const [hook] = valuesOf(bootstrapArgs({ template: t, release: releaseFor(t), mirror: 'http://m/ubuntu', tree: '/t', packageCache: null, packages: ['a'], sourcesDir }), 'setup-hook');
    const root = join(dir.path, 'ubuntu-root');
    await mkdir(root);
    expect(runHook(hook!, root).status).toBe(0);
    expect(await readFile(join(root, 'etc/apt/sources.list.d/imagefactory-ppa.list'), 'utf8')).toBe('deb http://ppa.example.com/ubuntu noble main\n');
  });
});

describe('package cache hooks', () => {
  function cacheHooks(packageCache: string | null): { setup: string[]; customize: string[] } {
    const t = debianTemplate({ extra: repositoriesXml([{ name: 'updates', url: 'deb http://deb.debian.org/debian bookworm-updates main', signed: true }]) });
    const args = bootstrapArgs({ template: t, release: releaseFor(t), mirror: 'http://m/debian', tree: '/t', packageCache, packages: ['a'] });
    return {
      setup: valuesOf(args, 'setup-hook').filter((h) => h.includes('var/cache/apt/archives')),
      customize: valuesOf(args, 'customize-hook').filter((h) => !h.includes('update-initramfs')),
    };
  }

  it('are absent without a cache and one of each with one', () => {
    expect(cacheHooks(null)).toEqual({ setup: [], customize: [] });
    const withCache = cacheHooks('/var/cache/imagefactory/debs');
    expect(withCache.setup).toHaveLength(1);
    expect(withCache.customize).toHaveLength(1);
  });

  it.each(['pkg cache', "it's a cache"])('seed the tree from %j and collect new packages into it without overwriting or leftovers', async (name) => {
    const base = join(dir.path, `hooks-${name.replace(/\W/g, '_')}`);
    const cache = join(base, name);
    const root = join(base, 'target root');
    await mkdir(cache, { recursive: true });
    await mkdir(root, { recursive: true });
    await writeFile(join(cache, 'a_1.0_amd64.deb'), 'cached a');
    await writeFile(join(cache, 'b_2.0_all.deb'), 'cached b');
    await writeFile(join(cache, 'notes.txt'), 'not a package');
    const { setup, customize } = cacheHooks(cache);

    // Setup: every cached .deb into the tree's apt archive, nothing else.
    const s = runHook(setup[0]!, root);
    expect(s.status, s.stderr).toBe(0);
    const archives = join(root, 'var/cache/apt/archives');
    expect((await readdir(archives)).sort()).toEqual(['a_1.0_amd64.deb', 'b_2.0_all.deb']);
    expect(await readFile(join(archives, 'b_2.0_all.deb'), 'utf8')).toBe('cached b');

    // The bootstrap downloads more, and (in this test) leaves a different a_1.0 behind.
    await writeFile(join(archives, 'a_1.0_amd64.deb'), 'downloaded a');
    await writeFile(join(archives, 'c_3.0_amd64.deb'), 'downloaded c');
    await writeFile(join(archives, 'lock'), '');
    await mkdir(join(archives, 'partial'));
    await writeFile(join(archives, 'partial', 'd_4.0_amd64.deb'), 'half');

    const c = runHook(customize[0]!, root);
    expect(c.status, c.stderr).toBe(0);
    expect((await readdir(cache)).sort()).toEqual(['a_1.0_amd64.deb', 'b_2.0_all.deb', 'c_3.0_amd64.deb', 'notes.txt']);
    expect(await readFile(join(cache, 'a_1.0_amd64.deb'), 'utf8')).toBe('cached a');
    expect(await readFile(join(cache, 'c_3.0_amd64.deb'), 'utf8')).toBe('downloaded c');
  });

  it('cope with a cache that does not exist yet and a tree without packages', async () => {
    const base = join(dir.path, 'hooks-missing');
    const cache = join(base, 'new cache');
    const root = join(base, 'root');
    await mkdir(root, { recursive: true });
    const { setup, customize } = cacheHooks(cache);

    const s = runHook(setup[0]!, root);
    expect(s.status, s.stderr).toBe(0);
    expect(await readdir(join(root, 'var/cache/apt/archives'))).toEqual([]);

    const c = runHook(customize[0]!, root);
    expect(c.status, c.stderr).toBe(0);
    expect(await readdir(cache)).toEqual([]);

    await writeFile(join(root, 'var/cache/apt/archives', 'z_1_all.deb'), 'z');
    expect(runHook(customize[0]!, root).status).toBe(0);
    expect(await readdir(cache)).toEqual(['z_1_all.deb']);
  });

  it('never fail the bootstrap when the cache cannot be made or written', async () => {
    const base = join(dir.path, 'hooks-unwritable');
    const root = join(base, 'root');
    await mkdir(join(root, 'var/cache/apt/archives'), { recursive: true });
    await writeFile(join(root, 'var/cache/apt/archives', 'a_1_all.deb'), 'a');
    await writeFile(join(root, 'var/cache/apt/archives', 'b_2_all.deb'), 'b');
    // A cache path whose parent is a regular file: mkdir and every copy fail, even for root.
    await writeFile(join(base, 'not a dir'), 'file');
    const cache = join(base, 'not a dir', 'cache');
    const { customize } = cacheHooks(cache);

    const c = runHook(customize[0]!, root);
    expect(c.status, c.stderr).toBe(0);
    expect((await stat(join(base, 'not a dir'))).isFile()).toBe(true);
    expect((await readdir(base)).sort()).toEqual(['not a dir', 'root']);
    // The tree's own packages are untouched.
    expect((await readdir(join(root, 'var/cache/apt/archives'))).sort()).toEqual(['a_1_all.deb', 'b_2_all.deb']);
  });

  it('leave no hidden temporary file behind when a copy fails halfway', async () => {
    const base = join(dir.path, 'hooks-halfway');
    const cache = join(base, 'cache');
    const root = join(base, 'root');
    const archives = join(root, 'var/cache/apt/archives');
    await mkdir(archives, { recursive: true });
    await mkdir(cache, { recursive: true });
    await writeFile(join(archives, 'good_1_all.deb'), 'good');
    // A "package" that is a regular file to test -f but cannot be read: cp creates its target, then fails.
    await symlink('/proc/self/mem', join(archives, 'bad_1_all.deb'));
    const { customize } = cacheHooks(cache);

    const c = runHook(customize[0]!, root);
    expect(c.status, c.stderr).toBe(0);
    const names = await readdir(cache);
    expect(names).toContain('good_1_all.deb');
    expect(names.filter((n) => n.startsWith('.'))).toEqual([]);
  });
});
