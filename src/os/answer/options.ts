import type { Template } from '../../tdl/index.js';
import { sha512Crypt } from './crypt.js';
import { AnswerError } from './errors.js';
import { generateRootPassword, Secret } from './secret.js';

export const GiB = 1024n ** 3n;
const MiB = 1024n ** 2n;

/** Oz's and Image Factory's default when a template has no `<disk>`. */
export const DEFAULT_DISK_SIZE_BYTES = 10n * GiB;

export type InstallerKind = 'preseed' | 'kickstart' | 'autoinstall';

export interface AnswerOptions {
  /** Disk size when the template has no `<disk>`; 10 GiB by default. */
  defaultDiskSizeBytes?: bigint;
  /** Root password when the template has none; without it a random one is generated (and returned). */
  rootPassword?: string;
  /** Salt for the root password hash; random by default (tests pin it). */
  salt?: string;
  /** `explicit` (default): swap + root sized to the disk; `auto`: the installer's own automatic layout. */
  partitioning?: 'explicit' | 'auto';
  /** The install target as the installer sees it; `/dev/vda` (the hypervisor layer attaches disks as virtio). */
  diskDevice?: string;
  locale?: string;
  keyboard?: string;
  timezone?: string;
  /** Mirror for Debian/Ubuntu ISO installs, which still fetch packages; the distribution's primary mirror by default. */
  isoMirror?: string;
}

export interface RootPassword {
  /** True when the template had no `<rootpw>` and no password was configured: the build reports that one was set. */
  generated: boolean;
  secret: Secret;
}

export interface AnswerFile {
  installer: InstallerKind;
  /** The name the installer looks for: `preseed.cfg`, `ks.cfg`, `user-data`. */
  fileName: string;
  content: string;
  /** Files that travel with the answer file (the NoCloud `meta-data` of autoinstall). */
  companions: { name: string; content: string }[];
  /** `install_script` when the build parameters replaced the generated file. */
  source: 'generated' | 'install_script';
  /** The password the generated file sets for root; null when `install_script` supplied the file. */
  rootPassword: RootPassword | null;
}

/** The template's `<rootpw>`, else the configured password, else a fresh random one (flagged `generated`). */
export function resolveRootPassword(template: Template, options: AnswerOptions): RootPassword {
  const given = template.os.rootpw ?? options.rootPassword ?? null;
  if (given !== null && given !== '') return { generated: false, secret: new Secret(given) };
  return { generated: true, secret: new Secret(generateRootPassword()) };
}

export function cryptRootPassword(root: RootPassword, options: AnswerOptions): string {
  return sha512Crypt(root.secret.reveal(), options.salt);
}

export interface DiskPlan {
  diskBytes: bigint;
  diskMiB: number;
  swapMiB: number;
  /** The root filesystem's minimum; it grows to fill what is left. */
  rootMiB: number;
  /** Space kept free for an EFI system partition or a BIOS boot partition and alignment. */
  reservedMiB: number;
}

const RESERVED_MIB = 640;
const ROOT_MIN_MIB = 1024;

/**
 * Swap is 1/16 of the disk, at least 256 MiB and at most 2 GiB; root gets
 * the rest minus room for a firmware partition (EFI 600 MiB, or BIOS boot)
 * and grows to the end of the disk.
 */
export function planDisk(template: Template, options: AnswerOptions): DiskPlan {
  const diskBytes = template.diskSizeBytes ?? options.defaultDiskSizeBytes ?? DEFAULT_DISK_SIZE_BYTES;
  const diskMiB = Number(diskBytes / MiB);
  const swapMiB = Math.min(2048, Math.max(256, Math.floor(diskMiB / 16)));
  const rootMiB = diskMiB - swapMiB - RESERVED_MIB;
  if (rootMiB < ROOT_MIN_MIB) {
    throw new AnswerError(
      'disk_too_small',
      `disk of ${diskBytes} bytes is too small to install on: need at least ${ROOT_MIN_MIB + swapMiB + RESERVED_MIB} MiB (root ${ROOT_MIN_MIB} MiB + swap ${swapMiB} MiB + ${RESERVED_MIB} MiB boot/alignment)`,
    );
  }
  return { diskBytes, diskMiB, swapMiB, rootMiB, reservedMiB: RESERVED_MIB };
}

/** The template's package names in order, once each, after `first` (packages the build itself needs). */
export function packageNames(template: Template, first: string[] = []): string[] {
  for (const { name } of template.packages) {
    // Answer files are line- and word-oriented: a space, quote or newline in a name would smuggle in another directive.
    if (!PACKAGE_NAME.test(name)) throw new AnswerError('package_invalid', `package name ${JSON.stringify(name)} is not a package name (letters, digits and . _ + - : ~ @ * only)`);
  }
  return [...new Set([...first, ...template.packages.map((p) => p.name)])];
}

const PACKAGE_NAME = /^[A-Za-z0-9@][A-Za-z0-9._+:~@*-]*$/;

/** A hostname from the template name: lower-case letters, digits and dashes, at most 63 characters. */
export function hostnameOf(template: Template): string {
  const name = template.name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return name || 'imagefactory';
}

/** One-line description for the generated file's header comment (no newlines, whatever the template says). */
export function headerLabel(template: Template, distroLabel: string): string {
  return `${template.name.replace(/[\r\n]+/g, ' ')} — ${distroLabel} ${template.os.arch}`;
}
