import { QemuDriver } from './qemu.js';
import { openHypervisor, type OpenedHypervisor, type OpenHypervisorOptions } from './select.js';

/**
 * The hypervisor as a daemon holds it: opened once, on first use, with the
 * configured driver; leftovers of earlier runs reaped whichever driver
 * started them.
 */
export interface HypervisorSession {
  /** The configured driver, opened on first call. */
  open(): Promise<OpenedHypervisor>;
  /** Destroys guests whose names start with `prefix`: qemu processes always, libvirt domains when libvirt is in use. */
  reap(prefix: string): Promise<string[]>;
  close(): Promise<void>;
}

export function hypervisorSession(options: OpenHypervisorOptions & { qemuRunDir: string }): HypervisorSession {
  let opened: Promise<OpenedHypervisor> | null = null;
  const open = () => (opened ??= openHypervisor(options));
  return {
    open,
    async reap(prefix) {
      // A guest of a qemu-driver run survives a switch to libvirt in the configuration, so qemu is always reaped.
      const reaped = await new QemuDriver({ runDir: options.qemuRunDir }).reap(prefix).catch(() => [] as string[]);
      if (options.hypervisor !== 'qemu') {
        const driver = (await open().catch(() => null))?.driver;
        if (driver?.kind === 'libvirt') reaped.push(...(await driver.reap(prefix).catch(() => [] as string[])));
      }
      return reaped;
    },
    async close() {
      const driver = (await opened?.catch(() => null))?.driver;
      await driver?.close();
    },
  };
}
