import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Repository, Template } from '../../tdl/index.js';
import type { KernelFlavour, Release } from './releases.js';
import { ARCHES } from './releases.js';
import { shellQuote } from '../../shell-quote.js';

/** What every image gets besides the template's packages: a kernel, an init, a network and ssh. */
export function basePackages(release: Release, arch: string, kernel: KernelFlavour = 'cloud'): string[] {
  const info = ARCHES[arch]!;
  return [info.kernelPackage[kernel][release.distro], 'systemd-sysv', 'udev', 'ifupdown', 'isc-dhcp-client', 'openssh-server'];
}

/**
 * An apt source line for a TDL repository. Debian/Ubuntu repositories are
 * written as is when they are already source lines (as Oz does); a bare URL
 * gets the release's suite and `main`. Unsigned repositories are trusted
 * explicitly, since nothing else can verify them.
 */
export function sourceLine(repo: Repository, suite: string): string {
  const line = /^deb(-src)?\s/.test(repo.url.trim()) ? repo.url.trim() : `deb ${repo.url.trim()} ${suite} main`;
  if (repo.signed || /^deb(-src)?\s+\[[^\]]*\btrusted=/.test(line)) return line;
  // Options already given (`deb [arch=amd64] …`) get trusted=yes added inside their brackets.
  if (/^deb(-src)?\s+\[/.test(line)) return line.replace(/^(deb(-src)?\s+\[)\s*/, '$1trusted=yes ');
  return line.replace(/^(deb(-src)?)\s+/, '$1 [trusted=yes] ');
}

export function repositoryFile(repo: Repository): string {
  return `/etc/apt/sources.list.d/imagefactory-${repo.name.replace(/[^A-Za-z0-9_.-]/g, '_')}.list`;
}

/** `Acquire::https::HOST::Verify-Peer/Verify-Host "false"` for repositories whose sslverify is off. */
export function aptTlsOptions(repos: Repository[]): string[] {
  const hosts = new Set<string>();
  for (const r of repos) {
    if (r.sslverify) continue;
    const url = /https:\/\/[^\s/]+/.exec(r.url)?.[0];
    if (!url) continue;
    try {
      // apt keys this setting by host name, without the port.
      hosts.add(new URL(url).hostname);
    } catch {
      // not a URL apt could fetch either: nothing to relax
    }
  }
  return [...hosts].flatMap((h) => [`Acquire::https::${h}::Verify-Peer "false"`, `Acquire::https::${h}::Verify-Host "false"`]);
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
  /** The template repositories the host may use (see repositories.ts); the others are the guest's. */
  hostRepositories: Repository[];
  /** The distribution's archive keyring: the only key the host bootstrap trusts. */
  keyring: string | null;
  /**
   * Directory holding each host repository's source file (`sourceFiles`),
   * copied into the tree by a hook: mmdebstrap prints every hook it runs,
   * and a source line may carry credentials.
   */
  sourcesDir: string;
  /** Keep apt's package lists in the tree: the guest installs packages next, and need not download the mirror's index again. */
  keepPackageLists?: boolean;
}

/** Writes `sourceFiles` into `dir` (private: a source line may carry credentials). */
export async function writeSourceFiles(dir: string, repos: Repository[], suite: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const f of sourceFiles(repos, suite)) await writeFile(join(dir, f.name), f.text, { mode: 0o600 });
}

/** The source file of each repository: its name in sources.list.d and its text. */
export function sourceFiles(repos: Repository[], suite: string): { name: string; text: string }[] {
  return repos.map((repo) => ({ name: repositoryFile(repo).split('/').pop()!, text: `${sourceLine(repo, suite)}\n` }));
}

const UPDATE_INITRAMFS = '/usr/sbin/update-initramfs';

/** The mmdebstrap command line that builds the root tree of a Debian or Ubuntu image on the host. */
export function mmdebstrapArgs(a: BootstrapArgs): string[] {
  const arch = ARCHES[a.template.os.arch]!.debian;
  // unshare mode, run as root, keeps root but gives mmdebstrap private mount and pid namespaces: the /proc,
  // /sys and /dev it mounts in the tree vanish with it however it ends (even SIGKILL), never left on the host.
  const args = ['--mode=unshare', '--variant=minbase', `--architectures=${arch}`, `--include=${[...new Set(a.packages)].join(',')}`];
  // Only the distribution's key verifies what the host installs: not /etc/apt/trusted.gpg{,.d} of the host, which may trust anything.
  if (a.keyring) args.push(`--keyring=${a.keyring}`);
  if (a.release.distro === 'Ubuntu') args.push('--components=main,universe');
  if (a.keepPackageLists) args.push('--skip=cleanup/apt/lists');
  for (const opt of aptTlsOptions(a.hostRepositories)) args.push(`--aptopt=${opt}`);
  // Template repositories go in files of their own so that non-persisted ones can be removed at the end.
  for (const { name } of sourceFiles(a.hostRepositories, a.release.suite)) {
    args.push(`--setup-hook=mkdir -p "$1/etc/apt/sources.list.d" && cp ${shellQuote(`${a.sourcesDir}/${name}`)} "$1/etc/apt/sources.list.d/${name}"`);
  }
  // The kernel's postinst and the initramfs-tools trigger would each build the initramfs (≈ 20 s apiece):
  // a no-op stands in for update-initramfs while packages install, and it runs once at the end.
  args.push(
    `--essential-hook=chroot "$1" dpkg-divert --quiet --local --rename --add ${UPDATE_INITRAMFS} && printf '#!/bin/sh\\nexit 0\\n' > "$1${UPDATE_INITRAMFS}" && chmod 755 "$1${UPDATE_INITRAMFS}"`,
    `--customize-hook=rm -f "$1${UPDATE_INITRAMFS}" && chroot "$1" dpkg-divert --quiet --local --rename --remove ${UPDATE_INITRAMFS} && chroot "$1" update-initramfs -c -k all`,
  );
  if (a.packageCache) {
    args.push(`--setup-hook=mkdir -p "$1/var/cache/apt/archives" && find ${shellQuote(a.packageCache)} -maxdepth 1 -name '*.deb' -exec cp -t "$1/var/cache/apt/archives/" {} + 2>/dev/null || true`);
    // Each new package lands under a hidden temporary name, then is renamed: a build running alongside never copies half a file.
    const cache = shellQuote(a.packageCache);
    args.push(
      // A cache that cannot be written (full, read-only) costs the next build a download, never this build.
      `--customize-hook=mkdir -p ${cache} 2>/dev/null; for f in "$1"/var/cache/apt/archives/*.deb; do [ -f "$f" ] || continue; b=$(basename "$f"); [ -e ${cache}/"$b" ] || { cp "$f" ${cache}/".$b.$$" 2>/dev/null && mv ${cache}/".$b.$$" ${cache}/"$b"; } || rm -f ${cache}/".$b.$$"; done; true`,
    );
  }
  args.push(a.release.suite, a.tree, a.mirror);
  return args;
}

