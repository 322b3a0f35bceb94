import { DEBIAN_SUITES, UBUNTU_SUITES } from '../answer/distro.js';
/** Which suite a TDL version means, and which kernel package each architecture boots. */

export interface Release {
  distro: 'Debian' | 'Ubuntu';
  suite: string;
}

// The suites the answer files know; the bootstrap builds Ubuntu from 20.04 on (systemd-era, mmdebstrap-tested).
const DEBIAN: Record<string, string> = Object.fromEntries(Object.entries(DEBIAN_SUITES));
const UBUNTU: Record<string, string> = Object.fromEntries(Object.entries(UBUNTU_SUITES).filter(([v]) => v >= '20.04'));

export function releaseOf(name: string, version: string): Release | null {
  const v = version.trim().toLowerCase();
  if (name === 'Debian') {
    const suite = DEBIAN[v] ?? (Object.values(DEBIAN).includes(v) ? v : undefined);
    return suite ? { distro: 'Debian', suite } : null;
  }
  if (name === 'Ubuntu') {
    const suite = UBUNTU[v] ?? (Object.values(UBUNTU).includes(v) ? v : undefined);
    return suite ? { distro: 'Ubuntu', suite } : null;
  }
  return null;
}

/** The archive keyring of each distribution on a Debian host (packages debian-archive-keyring, ubuntu-keyring). */
export const ARCHIVE_KEYRINGS: Record<Release['distro'], string> = {
  Debian: '/usr/share/keyrings/debian-archive-keyring.gpg',
  Ubuntu: '/usr/share/keyrings/ubuntu-archive-keyring.gpg',
};

export const KERNEL_FLAVOURS = ['cloud', 'generic'] as const;
export type KernelFlavour = (typeof KERNEL_FLAVOURS)[number];

export interface ArchInfo {
  /** Debian's name for the architecture. */
  debian: string;
  /** `cloud`: the kernel for virtual machines (smaller, installs in half the time); `generic`: with drivers for real hardware. */
  kernelPackage: Record<KernelFlavour, { Debian: string; Ubuntu: string }>;
  qemu: string;
}

/** x86_64 is built and booted today; aarch64 is described for when an arm64 bootloader path exists. */
export const ARCHES: Record<string, ArchInfo> = {
  x86_64: {
    debian: 'amd64',
    kernelPackage: { cloud: { Debian: 'linux-image-cloud-amd64', Ubuntu: 'linux-image-virtual' }, generic: { Debian: 'linux-image-amd64', Ubuntu: 'linux-image-generic' } },
    qemu: 'qemu-system-x86_64',
  },
  aarch64: {
    debian: 'arm64',
    kernelPackage: { cloud: { Debian: 'linux-image-cloud-arm64', Ubuntu: 'linux-image-virtual' }, generic: { Debian: 'linux-image-arm64', Ubuntu: 'linux-image-generic' } },
    qemu: 'qemu-system-aarch64',
  },
};

export const SUPPORTED_ARCHES = ['x86_64'];
