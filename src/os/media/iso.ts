import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Arch } from '../../tdl/index.js';
import type { AnswerFile, InstallerKind } from '../answer/options.js';
import type { DistroFamily } from '../answer/distro.js';
import { debianArch } from '../answer/distro.js';
import { MediaError } from './errors.js';
import { localRunner, runChecked, type RunTool } from './tools.js';

export interface IsoToolOptions {
  /** How xorriso is run; a build passes `StepContext.run`. */
  run?: RunTool;
  signal?: AbortSignal;
}

export interface IsoAddition {
  /** A file or directory on the host. */
  source: string;
  /** Absolute path inside the ISO, e.g. `/ks.cfg`. */
  isoPath: string;
}

/**
 * Writes `outIso`: `originalIso` with `additions` mapped in (the answer
 * file, TDL `<extras>`), its boot records replayed so it boots as before,
 * its volume id kept (installers find their stage 2 by it). The output is
 * written under a temporary name and renamed into place.
 */
export async function remasterIso(originalIso: string, outIso: string, additions: IsoAddition[], options: IsoToolOptions = {}): Promise<void> {
  for (const a of additions) {
    if (!a.isoPath.startsWith('/') || a.isoPath.split('/').includes('..')) {
      throw new MediaError('invalid_argument', `ISO path ${JSON.stringify(a.isoPath)} must be absolute and must not contain ".."`);
    }
  }
  // xorriso takes a non-ISO input for blank media and writes an ISO holding only the additions.
  await assertIso9660(originalIso);
  const run = options.run ?? localRunner(options.signal);
  const tmp = `${outIso}.tmp-${randomBytes(4).toString('hex')}`;
  await mkdir(dirname(outIso), { recursive: true });
  try {
    const maps = additions.flatMap((a) => ['-map', a.source, a.isoPath]);
    await runChecked(run, 'xorriso', ['-indev', originalIso, '-outdev', tmp, ...maps, '-boot_image', 'any', 'replay']);
    await rename(tmp, outIso);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Throws `iso_invalid` unless `path` holds an ISO 9660 volume descriptor ("CD001" at sector 16). */
export async function assertIso9660(path: string): Promise<void> {
  const handle = await open(path, 'r').catch(() => null);
  if (!handle) throw new MediaError('iso_invalid', `${path} cannot be read`);
  try {
    const magic = Buffer.alloc(5);
    const { bytesRead } = await handle.read(magic, 0, 5, 16 * 2048 + 1);
    if (bytesRead !== 5 || magic.toString('latin1') !== 'CD001') throw new MediaError('iso_invalid', `${path} is not an ISO 9660 image (no volume descriptor at sector 16)`);
  } finally {
    await handle.close();
  }
}

/** Paths of the regular files in an ISO. */
export async function listIso(iso: string, options: IsoToolOptions = {}): Promise<string[]> {
  await assertIso9660(iso);
  const run = options.run ?? localRunner(options.signal);
  const { stdout } = await runChecked(run, 'xorriso', ['-indev', iso, '-find', '/', '-type', 'f']);
  return stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith("'") && line.endsWith("'") && line.length >= 2)
    .map((line) => line.slice(1, -1).replace(/'\\''/g, "'"));
}

/** The ISO's volume id (what `-V` set: `cidata`, `Fedora-S-dvd-x86_64-40`). */
export async function isoVolumeId(iso: string, options: IsoToolOptions = {}): Promise<string> {
  await assertIso9660(iso);
  const run = options.run ?? localRunner(options.signal);
  const { stdout } = await runChecked(run, 'xorriso', ['-indev', iso, '-pvd_info']);
  const m = /^Volume Id\s*:\s?(.*)$/m.exec(stdout);
  if (!m) throw new MediaError('tool_failed', `xorriso -pvd_info printed no volume id for ${iso}`);
  return m[1]!.trim();
}

/** Copies files out of an ISO (e.g. the installer kernel and initrd for a direct kernel boot). */
export async function extractFromIso(iso: string, files: { isoPath: string; dest: string }[], options: IsoToolOptions = {}): Promise<void> {
  await assertIso9660(iso);
  const run = options.run ?? localRunner(options.signal);
  for (const f of files) await mkdir(dirname(f.dest), { recursive: true });
  await runChecked(run, 'xorriso', ['-osirrox', 'on', '-indev', iso, ...files.flatMap((f) => ['-extract', f.isoPath, f.dest])]);
}

/** Where installer ISOs keep their kernel and initrd, most likely first. */
export function isoInstallerCandidates(family: DistroFamily, arch: Arch): { kernel: string; initrd: string }[] {
  switch (family) {
    case 'redhat':
      return [{ kernel: '/images/pxeboot/vmlinuz', initrd: '/images/pxeboot/initrd.img' }];
    case 'debian': {
      const dir = { amd64: 'install.amd', arm64: 'install.a64', i386: 'install.386', ppc64el: 'install.p64', s390x: 'install.s390x', armhf: 'install.armhf' }[debianArch(arch)] ?? 'install';
      return [{ kernel: `/${dir}/vmlinuz`, initrd: `/${dir}/initrd.gz` }];
    }
    case 'ubuntu':
      return [
        // Live server ISOs (subiquity, 20.04 and later), then the d-i ISOs of 20.04 and before.
        { kernel: '/casper/vmlinuz', initrd: '/casper/initrd' },
        { kernel: '/casper/vmlinuz', initrd: '/casper/initrd.gz' },
        { kernel: '/install/vmlinuz', initrd: '/install/initrd.gz' },
      ];
  }
}

/** The installer kernel and initrd paths inside an ISO; `installer_not_found` when none of the known layouts is there. */
export async function locateInstallerOnIso(iso: string, family: DistroFamily, arch: Arch, options: IsoToolOptions = {}): Promise<{ kernel: string; initrd: string }> {
  const files = new Set(await listIso(iso, options));
  const candidates = isoInstallerCandidates(family, arch);
  const found = candidates.find((c) => files.has(c.kernel) && files.has(c.initrd));
  if (!found) {
    throw new MediaError('installer_not_found', `no installer kernel and initrd in ${iso}; looked for ${candidates.map((c) => `${c.kernel} + ${c.initrd}`).join(', ')}`);
  }
  return found;
}

/** Where the installer finds its answer file. */
export type AnswerPlacement =
  /** Appended to the initrd (`appendToInitrd`), at the root of the installer's filesystem. */
  | 'initrd'
  /** Added to the install ISO (`remasterIso`): at its root, or under `/nocloud/` for autoinstall. */
  | 'cdrom'
  /** autoinstall only: a separate NoCloud volume labelled `cidata` (`writeNocloudSeed`). */
  | 'seed';

export interface KernelArgsOptions {
  /** For url installs of the Red Hat family: the tree Anaconda installs from (`inst.repo=`). */
  installUrl?: string;
  /** The TDL's `<kernelparam>`, appended last. */
  kernelparam?: string | null;
  /** Serial console for the installer, so the build log sees it; on by default. */
  serialConsole?: boolean;
}

/**
 * The installer's kernel command line for a direct kernel boot:
 * `inst.ks=cdrom:/ks.cfg` (or `file:/ks.cfg` from the initrd), `auto=true
 * priority=critical preseed/file=/preseed.cfg`, `autoinstall ds=nocloud`.
 */
export function installerKernelArgs(answer: Pick<AnswerFile, 'installer' | 'fileName'>, placement: AnswerPlacement, options: KernelArgsOptions = {}): string {
  const args: string[] = [];
  const file = `/${answer.fileName}`;
  const installer: InstallerKind = answer.installer;
  switch (installer) {
    case 'kickstart':
      if (placement === 'seed') throw new MediaError('invalid_argument', 'a kickstart is found in the initrd or on the CD-ROM, not on a seed volume');
      args.push(`inst.ks=${placement === 'cdrom' ? 'cdrom:' : 'file:'}${file}`, 'inst.text');
      if (options.installUrl) args.push(`inst.repo=${options.installUrl}`);
      else if (placement === 'cdrom') args.push('inst.repo=cdrom');
      break;
    case 'preseed':
      if (placement === 'seed') throw new MediaError('invalid_argument', 'a preseed is found in the initrd or on the CD-ROM, not on a seed volume');
      args.push('auto=true', 'priority=critical', `preseed/file=${placement === 'cdrom' ? `/cdrom${file}` : file}`, 'debian-installer/locale=en_US.UTF-8', 'keyboard-configuration/xkb-keymap=us');
      break;
    case 'autoinstall':
      // subiquity runs in the live system, after the initramfs is gone: the seed is a `cidata` volume or `/nocloud/` on the ISO.
      if (placement === 'initrd') throw new MediaError('invalid_argument', 'an autoinstall is found on a cidata seed volume or on the CD-ROM (/nocloud/), not in the initrd');
      args.push('autoinstall', placement === 'seed' ? 'ds=nocloud' : 'ds=nocloud;s=/cdrom/nocloud/');
      break;
  }
  if (options.serialConsole ?? true) args.push('console=tty0', 'console=ttyS0,115200n8');
  if (options.kernelparam?.trim()) args.push(options.kernelparam.trim());
  return args.join(' ');
}
