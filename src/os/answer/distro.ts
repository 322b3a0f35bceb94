import type { Arch } from '../../tdl/index.js';
import { AnswerError } from './errors.js';

/**
 * What the installer strategy needs to know about a template's `<os>`:
 * which installer family, which release, which suite (Debian/Ubuntu).
 * Names follow Oz: `Debian`, `Ubuntu`, `Fedora`, `RHEL-9`, `CentOS-9`,
 * `CentOS-Stream`, matched case-insensitively.
 */
export type DistroFamily = 'debian' | 'ubuntu' | 'redhat';

export interface Distro {
  family: DistroFamily;
  /** The name as the template wrote it. */
  name: string;
  /** Major release (Debian 12, Ubuntu 22 of 22.04, Fedora 40, RHEL 9). */
  major: number;
  /** Minor release when known (Ubuntu 4 of 22.04, RHEL 4 of RHEL-9/4), else null. */
  minor: number | null;
  /** Debian/Ubuntu suite (`bookworm`, `jammy`), null for Red Hat or a release with no known suite. */
  suite: string | null;
  /** `Debian 12 (bookworm)`, `RHEL 9.4`: for comments and messages. */
  label: string;
}

export const DEBIAN_SUITES: Readonly<Record<number, string>> = { 10: 'buster', 11: 'bullseye', 12: 'bookworm', 13: 'trixie' };
export const UBUNTU_SUITES: Readonly<Record<string, string>> = { '18.04': 'bionic', '20.04': 'focal', '22.04': 'jammy', '24.04': 'noble' };

/** Primary mirrors, used when an ISO install still needs a network mirror for packages. */
export const DEFAULT_MIRRORS: Readonly<Record<'debian' | 'ubuntu', string>> = {
  debian: 'http://deb.debian.org/debian',
  ubuntu: 'http://archive.ubuntu.com/ubuntu',
};

const RED_HAT_NAMES = /^(rhel|centos|centos-stream|rocky|almalinux|alma|ol)(?:-(\d+))?$/i;

export function identifyDistro(os: { name: string; version: string }): Distro {
  const name = os.name.trim();
  const version = os.version.trim();
  const lower = name.toLowerCase();
  if (lower === 'debian') return debian(name, version);
  if (lower === 'ubuntu') return ubuntu(name, version);
  if (lower === 'fedora') {
    const major = /^\d+$/.test(version) ? Number(version) : NaN;
    if (!(major >= 28)) throw new AnswerError('unsupported_version', `Fedora version must be a release number of 28 or later, got "${version}"`);
    return { family: 'redhat', name, major, minor: null, suite: null, label: `Fedora ${major}` };
  }
  const rh = RED_HAT_NAMES.exec(name);
  if (rh) return redHat(name, rh[1]!, rh[2], version);
  throw new AnswerError(
    'unsupported_os',
    `no installer answer file for "${name}": supported are Debian, Ubuntu, Fedora, RHEL-N, CentOS-N, CentOS-Stream, Rocky-N, AlmaLinux-N`,
  );
}

function debian(name: string, version: string): Distro {
  const byCodename = Object.entries(DEBIAN_SUITES).find(([, suite]) => suite === version.toLowerCase());
  const major = byCodename ? Number(byCodename[0]) : Number(/^(\d+)(?:\.\d+)*$/.exec(version)?.[1] ?? NaN);
  const suite = DEBIAN_SUITES[major];
  if (!suite) {
    throw new AnswerError('unsupported_version', `Debian version must be one of 10 (buster), 11 (bullseye), 12 (bookworm), 13 (trixie), got "${version}"`);
  }
  return { family: 'debian', name, major, minor: null, suite, label: `Debian ${major} (${suite})` };
}

function ubuntu(name: string, version: string): Distro {
  const m = /^(\d+)\.(\d+)(?:\.\d+)?$/.exec(version);
  if (!m) throw new AnswerError('unsupported_version', `Ubuntu version must look like 22.04, got "${version}"`);
  const major = Number(m[1]);
  const minor = Number(m[2]);
  const release = `${m[1]}.${m[2]}`;
  const suite = UBUNTU_SUITES[release] ?? null;
  return { family: 'ubuntu', name, major, minor, suite, label: suite ? `Ubuntu ${release} (${suite})` : `Ubuntu ${release}` };
}

/**
 * Oz writes Red Hat releases as name `RHEL-9` + version `4` (= 9.4); plain
 * `RHEL` + `9.4`, `CentOS-Stream` + `9` and `RHEL-7` + `U5` occur too.
 */
function redHat(name: string, base: string, nameMajor: string | undefined, version: string): Distro {
  const v = version.replace(/^u/i, '');
  let major: number;
  let minor: number | null = null;
  const dotted = /^(\d+)(?:\.(\d+))?$/.exec(v);
  if (nameMajor !== undefined) {
    major = Number(nameMajor);
    if (dotted && dotted[2] !== undefined && Number(dotted[1]) === major) minor = Number(dotted[2]);
    else if (dotted && dotted[2] === undefined) minor = base.toLowerCase() === 'centos-stream' ? null : Number(dotted[1]);
    else if (!/^(stream|\d+)$/i.test(v)) throw new AnswerError('unsupported_version', `${name} version must be a minor release number such as "4", got "${version}"`);
  } else if (dotted) {
    major = Number(dotted[1]);
    minor = dotted[2] === undefined ? null : Number(dotted[2]);
  } else {
    throw new AnswerError('unsupported_version', `${name} version must look like 9 or 9.4, got "${version}"`);
  }
  if (major < 7) throw new AnswerError('unsupported_version', `${name} ${major} is too old for the kickstart this project writes (7 or later)`);
  const display = base.toLowerCase() === 'centos-stream' ? 'CentOS Stream' : base.toUpperCase() === 'RHEL' ? 'RHEL' : base;
  return { family: 'redhat', name, major, minor, suite: null, label: minor === null ? `${display} ${major}` : `${display} ${major}.${minor}` };
}

/** Debian's architecture names (`dpkg --print-architecture`). */
export function debianArch(arch: Arch): string {
  switch (arch) {
    case 'x86_64':
      return 'amd64';
    case 'aarch64':
      return 'arm64';
    case 'i386':
      return 'i386';
    case 'ppc64le':
      return 'ppc64el';
    case 's390x':
      return 's390x';
    case 'armv7l':
      return 'armhf';
    case 'ppc64':
      return 'ppc64';
  }
}
