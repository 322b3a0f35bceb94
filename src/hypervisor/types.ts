/**
 * The hypervisor layer's one small interface. Two drivers implement it:
 * `libvirt` (through @unraid/libvirt, main thread only) and `qemu` (a
 * directly spawned qemu-system process driven over QMP).
 */

/** Every domain we create is named `imagefactory-<imageId>-<purpose>`, so parallel builds never collide and leftovers can be reaped. */
export const DOMAIN_PREFIX = 'imagefactory-';

export function domainName(imageId: string, purpose: string): string {
  return `${DOMAIN_PREFIX}${imageId}-${purpose}`;
}

export type Accel = 'kvm' | 'tcg';

export interface DiskSpec {
  path: string;
  format: 'raw' | 'qcow2';
  /** Attach read-only (e.g. a seed or answer-file image). */
  readonly?: boolean;
}

export interface DomainSpec {
  name: string;
  memoryMiB: number;
  vcpus: number;
  accel: Accel;
  /** Disks in order; the first is the install target. virtio. */
  disks: DiskSpec[];
  /** An ISO attached as a CD-ROM. */
  cdrom?: string;
  /** Direct kernel boot (installer kernel + initrd with the answer file appended). */
  kernel?: { path: string; initrd?: string; cmdline?: string };
  /** Boot firmware for disk boots; BIOS by default. */
  firmware?: 'bios' | 'uefi';
  /** `user`: NAT to the host's network (what an installer needs); `none`: no NIC. */
  network: 'user' | 'none';
  /** File the serial console (ttyS0) is written to, for the build log and failure reports. */
  serialLog: string;
  /** File a second serial port (ttyS1) is written to: a build-time protocol channel with the guest. */
  channelLog?: string;
  /**
   * A state file written by `Domain.checkpoint` of a guest with this same
   * spec and disks as they were then: the guest resumes from it instead of
   * booting.
   */
  restoreFrom?: string;
}

export interface ActivitySample {
  /** Cumulative disk requests (reads + writes) since the domain started. */
  diskRequests: number;
  /** Cumulative bytes through the network interface(s). */
  netBytes: number;
}

/** How a guest that is off ended: its own clean power-off (or reboot request), or not. */
export interface GuestEnd {
  clean: boolean;
  /** What happened, for the build's error: `qemu exited with code 1`, `qemu was killed by SIGSEGV`, `libvirt: reason=crashed`. */
  description: string;
}

export interface Domain {
  readonly name: string;
  /** Starts the guest. */
  start(): Promise<void>;
  /** True once the guest has powered itself off (or was destroyed). */
  isOff(): Promise<boolean>;
  /**
   * Once off: whether the guest ended by its own power-off, or by a crash of
   * the emulator, a non-zero exit, a signal, a destroy. A half-written disk
   * must never pass for a finished install. Null while it runs, or when the
   * hypervisor cannot tell.
   */
  ending(): Promise<GuestEnd | null>;
  /** Current cumulative activity counters. */
  activity(): Promise<ActivitySample>;
  /** Writes a PNG screenshot of the guest's display. */
  screenshot(pngPath: string): Promise<void>;
  /** Stops the guest at once and removes the definition; safe to call twice and after power-off. */
  destroy(): Promise<void>;
  /**
   * Pauses the guest and writes its memory and device state to `stateFile`;
   * it stays paused, with its disks flushed, until `resume`. Only drivers
   * that can restore such a file (`DomainSpec.restoreFrom`) have it.
   */
  checkpoint?(stateFile: string): Promise<void>;
  /** Lets a guest paused by `checkpoint` run on. */
  resume?(): Promise<void>;
}

export interface HypervisorDriver {
  readonly kind: 'libvirt' | 'qemu';
  /** Defines (and does not start) a transient domain. */
  define(spec: DomainSpec): Promise<Domain>;
  /** Destroys every domain/process whose name starts with `prefix`; returns the names reaped. */
  reap(prefix: string): Promise<string[]>;
  /**
   * What a checkpoint taken by this driver with `accel` can only be restored
   * on (driver, emulator build, accelerator); absent when the driver takes none.
   */
  checkpointIdentity?(accel: Accel): Promise<string>;
  close(): Promise<void>;
}
