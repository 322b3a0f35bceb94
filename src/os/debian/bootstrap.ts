import type { Repository, Template } from '../../tdl/index.js';
import type { Release } from './releases.js';
import { ARCHES } from './releases.js';

/** What every image gets besides the template's packages: a kernel, an init, a network and ssh. */
export function basePackages(release: Release, arch: string): string[] {
  const info = ARCHES[arch]!;
  return [info.kernelPackage[release.distro], 'systemd-sysv', 'udev', 'ifupdown', 'isc-dhcp-client', 'openssh-server'];
}

/**
 * An apt source line for a TDL repository. Debian/Ubuntu repositories are
 * written as is when they are already source lines (as Oz does); a bare URL
 * gets the release's suite and `main`. Unsigned repositories are trusted
 * explicitly, since nothing else can verify them.
 */
export function sourceLine(repo: Repository, suite: string): string {
  let line = /^deb(-src)?\s/.test(repo.url.trim()) ? repo.url.trim() : `deb ${repo.url.trim()} ${suite} main`;
  if (!repo.signed && !line.includes('[')) line = line.replace(/^(deb(-src)?)\s+/, '$1 [trusted=yes] ');
  return line;
}

export function repositoryFile(repo: Repository): string {
  return `/etc/apt/sources.list.d/imagefactory-${repo.name.replace(/[^A-Za-z0-9_.-]/g, '_')}.list`;
}

/** `Acquire::https::HOST::Verify-Peer "false"` for repositories whose sslverify is off. */
export function aptTlsOptions(repos: Repository[]): string[] {
  const hosts = new Set<string>();
  for (const r of repos) {
    if (r.sslverify) continue;
    const url = /https:\/\/[^\s/]+/.exec(r.url)?.[0];
    if (url) hosts.add(new URL(url).host);
  }
  return [...hosts].map((h) => `Acquire::https::${h}::Verify-Peer "false"`);
}

export interface BootstrapArgs {
  template: Template;
  release: Release;
  mirror: string;
  tree: string;
  /** Directory of .deb files shared across builds, or null for none. */
  packageCache: string | null;
  /** Packages installed by the bootstrap; without precommands, the template's are among them. */
  packages: string[];
}

/** The mmdebstrap command line that builds the root tree of a Debian or Ubuntu image on the host. */
export function mmdebstrapArgs(a: BootstrapArgs): string[] {
  const arch = ARCHES[a.template.os.arch]!.debian;
  const args = ['--mode=root', '--variant=minbase', `--architectures=${arch}`, `--include=${[...new Set(a.packages)].join(',')}`];
  if (a.release.distro === 'Ubuntu') args.push('--components=main,universe');
  for (const opt of aptTlsOptions(a.template.repositories)) args.push(`--aptopt=${opt}`);
  // Template repositories go in files of their own so that non-persisted ones can be removed at the end.
  for (const repo of a.template.repositories) {
    args.push(`--setup-hook=mkdir -p "$1/etc/apt/sources.list.d" && printf '%s\\n' ${shellQuote(sourceLine(repo, a.release.suite))} > "$1${repositoryFile(repo)}"`);
  }
  if (a.packageCache) {
    args.push(`--setup-hook=mkdir -p "$1/var/cache/apt/archives" && find ${shellQuote(a.packageCache)} -maxdepth 1 -name '*.deb' -exec cp -t "$1/var/cache/apt/archives/" {} + 2>/dev/null || true`);
    args.push(`--customize-hook=mkdir -p ${shellQuote(a.packageCache)} && find "$1/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec cp -n -t ${shellQuote(a.packageCache)} {} +`);
  }
  args.push(a.release.suite, a.tree, a.mirror);
  return args;
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
