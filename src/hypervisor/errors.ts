/**
 * Typed errors of the hypervisor layer. Both carry a stable `code`, a short
 * human message and `details` for the image's status and the failure report,
 * the same shape as StepError (src/os/plugin.ts), which this layer does not import.
 */

export type HypervisorErrorCode =
  /** The spec cannot be turned into a domain (bad name, missing firmware…). */
  | 'invalid_domain_spec'
  /** A domain or qemu process of that name is already running. */
  | 'domain_exists'
  /** The hypervisor refused to start the guest (qemu exited at once, libvirt said no). */
  | 'domain_start_failed'
  /** The hypervisor cannot be reached or answered with an error. */
  | 'hypervisor_unavailable'
  /** A saved guest state cannot be restored here (another driver, accelerator or emulator build), or saving one failed. */
  | 'checkpoint_unusable';

export class HypervisorError extends Error {
  constructor(
    readonly code: HypervisorErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'HypervisorError';
  }
}

/** `guest_crashed`: the guest ended without powering itself off (the emulator crashed, exited non-zero, was killed or destroyed). */
export type InstallErrorCode = 'install_stalled' | 'timeout' | 'cancelled' | 'guest_crashed';

export interface InstallFailureDetails extends Record<string, unknown> {
  domain: string;
  /** PNG of the guest's display at the moment of failure, if one could be taken. */
  screenshot?: string;
  screenshotError?: string;
  /** File holding the last bytes of the serial console. */
  serialTailFile?: string;
  /** The last bytes (≈ 4 KiB) of the serial console, as text. */
  serialTail: string;
  lastConsoleLine: string;
  elapsedSeconds: number;
  /** Seconds since the last disk or network activity. */
  idleSeconds: number;
  /** How the guest ended, for `guest_crashed`. */
  ending?: string;
  diskRequests: number;
  netBytes: number;
}

/** How an install watched by `watchInstall` failed. */
export class InstallError extends Error {
  constructor(
    readonly code: InstallErrorCode,
    message: string,
    readonly details: InstallFailureDetails,
  ) {
    super(message);
    this.name = 'InstallError';
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;

/**
 * Domain names go into qemu option strings, libvirt XML, file names and a
 * unix socket path; allowing only this alphabet keeps all of them safe
 * without escaping.
 */
export function assertDomainName(name: string): void {
  if (!NAME.test(name)) {
    throw new HypervisorError('invalid_domain_spec', `domain name ${JSON.stringify(name)} must be 1–80 characters of letters, digits, ".", "_" and "-"`, {
      name,
    });
  }
}
