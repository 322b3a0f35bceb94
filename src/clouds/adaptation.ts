import type { Repository } from '../tdl/index.js';
import { installedPackages, type GuestFs } from './guest-fs.js';
import { modulesAtBoot, type ModulePresence } from './initramfs.js';
import { StepError } from '../os/plugin.js';
import type { CloudStepContext } from './types.js';

/** What a target needs in the image, whatever put it there (the bootstrap or the adapt boot). */
export interface AdaptationSpec {
  /** Debian packages: the target content's, plus any the plugin always needs. */
  packages: string[];
  repositories: Repository[];
  /** Kernel modules that must be available before the root filesystem is mounted. */
  bootModules: string[];
  /** The kernel command line must send the console to the first serial port (`console=ttyS0`). */
  serialConsole: boolean;
  /** Configuration files the image must hold with exactly this content (written without a boot when nothing else needs one). */
  files: GuestFile[];
}

export interface GuestFile {
  path: string;
  content: string;
}

export const NO_ADAPTATION: AdaptationSpec = { packages: [], repositories: [], bootModules: [], serialConsole: false, files: [] };

/**
 * cloud-init's locale module runs `locale-gen` and `update-locale` for
 * en_US.UTF-8, which a minimal image has not generated (and may lack the
 * tools for): it fails, and cloud-init ends in `status: error`. Images made
 * here keep the locale they were built with.
 */
export const CLOUD_INIT_CONFIG: GuestFile = {
  path: '/etc/cloud/cloud.cfg.d/01_imagefactory.cfg',
  content: '# Written by imagefactory: this image has no generated locales, so cloud-init leaves the locale alone.\nlocale: false\n',
};

/** What the image lacks of a spec, found by reading it (no boot). */
export interface AdaptationPlan {
  missingPackages: string[];
  /** Repositories to add: only when packages are missing (they are there to install them). */
  repositories: Repository[];
  missingModules: string[];
  modules: Record<string, ModulePresence>;
  addSerialConsole: boolean;
  kernelCmdline: string | null;
  /** Files absent or different from what the spec wants. */
  writeFiles: GuestFile[];
}

/** Files alone are written into the overlay with debugfs; anything else takes the adaptation boot (which writes the files too). */
export function needsBoot(plan: AdaptationPlan): boolean {
  return plan.missingPackages.length > 0 || plan.missingModules.length > 0 || plan.addSerialConsole;
}

/** The spec of a target: the plugin's own needs plus what target_content.xml lists for it. */
export function withTargetContent(ctx: Pick<CloudStepContext, 'targetContent'>, own: Partial<AdaptationSpec>): AdaptationSpec {
  const packages = [...(own.packages ?? [])];
  for (const p of ctx.targetContent?.packages ?? []) if (!packages.includes(p)) packages.push(p);
  const repositories = [...(own.repositories ?? []), ...(ctx.targetContent?.repositories ?? [])];
  const files = [...(own.files ?? [])];
  if (packages.includes('cloud-init') && !files.some((f) => f.path === CLOUD_INIT_CONFIG.path)) files.push(CLOUD_INIT_CONFIG);
  return { packages, repositories, bootModules: own.bootModules ?? [], serialConsole: own.serialConsole ?? false, files };
}

/** The linux line's arguments in the image's GRUB configuration, or null when it has none. */
export function grubCmdline(grubCfg: string): string | null {
  const m = /^\s*linux\s+\S+\s*(.*)$/m.exec(grubCfg);
  return m ? m[1]!.trim() : null;
}

export async function planAdaptation(ctx: Pick<CloudStepContext, 'run' | 'workdir'>, fs: GuestFs, spec: AdaptationSpec): Promise<AdaptationPlan> {
  let missingPackages: string[] = [];
  if (spec.packages.length) {
    const status = await fs.read('/var/lib/dpkg/status');
    if (!status) throw new StepError('not_debian', 'the image has no /var/lib/dpkg/status: only Debian-family images can be adapted');
    const installed = installedPackages(status.toString('utf8'));
    missingPackages = spec.packages.filter((p) => !installed.has(p));
  }
  const modules = await modulesAtBoot(ctx, fs, spec.bootModules);
  const absent = Object.entries(modules).filter(([, p]) => p === 'not-in-kernel').map(([m]) => m);
  if (absent.length) throw new StepError('driver_unavailable', `the image's kernel has no ${absent.join(', ')} driver (neither built in nor a module); use a kernel that has it`, { modules });
  const missingModules = Object.entries(modules).filter(([, p]) => p === 'missing').map(([m]) => m);
  const grub = (await fs.read('/boot/grub/grub.cfg'))?.toString('utf8') ?? '';
  const kernelCmdline = grubCmdline(grub);
  const addSerialConsole = spec.serialConsole && !/(^|\s)console=ttyS0\b/.test(kernelCmdline ?? '');
  const writeFiles: GuestFile[] = [];
  for (const f of spec.files) if ((await fs.read(f.path))?.toString('utf8') !== f.content) writeFiles.push(f);
  return { missingPackages, repositories: missingPackages.length ? spec.repositories : [], missingModules, modules, addSerialConsole, kernelCmdline, writeFiles };
}
