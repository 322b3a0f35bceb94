import { chooseAccel, type AccelSetting } from './accel.js';
import { HypervisorError } from './errors.js';
import { LibvirtDriver } from './libvirt.js';
import { QemuDriver } from './qemu.js';
import type { Accel, HypervisorDriver } from './types.js';

export type HypervisorSetting = 'auto' | 'libvirt' | 'qemu';

export interface OpenHypervisorOptions {
  hypervisor: HypervisorSetting;
  accel: AccelSetting;
  libvirtUri: string;
  /** How long `auto` waits for libvirt before taking qemu; 2 s by default. */
  probeTimeoutMs?: number;
  /** Directory for the qemu driver's QMP sockets. */
  qemuRunDir?: string;
  log?: (line: string) => void;
}

export interface OpenedHypervisor {
  driver: HypervisorDriver;
  /** The accelerator every DomainSpec should use. */
  accel: Accel;
}

/**
 * Opens the configured driver. `auto` takes libvirt when its URI answers
 * within ~2 s and the qemu driver otherwise; an explicit `libvirt` that does
 * not answer is an error (`hypervisor_unavailable`), not a silent fallback.
 */
export async function openHypervisor(options: OpenHypervisorOptions): Promise<OpenedHypervisor> {
  const log = options.log ?? (() => {});
  const { accel, reason } = chooseAccel(options.accel);
  log(`hypervisor: accelerator ${accel} (${reason})`);
  const qemu = () => new QemuDriver({ log, ...(options.qemuRunDir ? { runDir: options.qemuRunDir } : {}) });

  if (options.hypervisor === 'qemu') {
    log('hypervisor: qemu driver (hypervisor = "qemu")');
    return { driver: qemu(), accel };
  }
  if (options.hypervisor === 'libvirt') {
    const driver = await LibvirtDriver.connect({ uri: options.libvirtUri, log });
    log(`hypervisor: libvirt driver at ${options.libvirtUri} (hypervisor = "libvirt")`);
    return { driver, accel };
  }
  try {
    const driver = await LibvirtDriver.connect({ uri: options.libvirtUri, log }, options.probeTimeoutMs ?? 2000);
    log(`hypervisor: libvirt driver (auto: ${options.libvirtUri} answered)`);
    return { driver, accel };
  } catch (err) {
    const why = err instanceof HypervisorError ? err.message : String(err);
    log(`hypervisor: qemu driver (auto: ${why})`);
    return { driver: qemu(), accel };
  }
}
