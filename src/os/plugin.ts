import type { DownloadCache } from './media/download-cache.js';
import type { Template } from '../tdl/index.js';
import type { ImageRecord } from '../model/index.js';
import type { DomainSpec } from '../hypervisor/types.js';

/**
 * One unit of build work and its undo, like a Packer step. `run` must be
 * repeatable (a restored build re-runs the step it was in, so it checks what
 * already exists first); `undo` must be safe after a partial run and safe to
 * run twice.
 */
export interface BuildStep {
  run(ctx: StepContext): Promise<void>;
  undo(ctx: StepContext): Promise<void>;
}

/** What an OS plugin does for a base image build, one step per machine state. */
export interface OsPlugin {
  prepare: BuildStep;
  install: BuildStep;
  customize: BuildStep;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface StepContext {
  image: ImageRecord;
  template: Template;
  parameters: Record<string, unknown>;
  /** Private scratch directory of this build, named after its id so leftovers can be reaped. */
  workdir: string;
  /** Where the finished disk must be written; the snapshot step takes it from here. */
  diskPath: string;
  /** Aborted on cancel, timeout, or shutdown. */
  signal: AbortSignal;
  log(line: string): void;
  progress(percent: number, activity: string): void;
  /** Spawns a program in its own process group, output to the build log; the group is killed on abort. */
  run(command: string, args: string[], options?: RunOptions): Promise<RunResult>;
  /**
   * Boots a guest on the configured hypervisor and watches it until it
   * powers itself off; rejects with `install_stalled`, `timeout` or
   * `cancelled` (screenshot and console tail in the error's details). The
   * guest is destroyed on every exit path.
   */
  runGuest(spec: GuestSpec): Promise<void>;
  /** Install media by URL, through the daemon's shared download cache (`media_cache`, `installer_media_dir`). */
  media: DownloadCache;
  /** Facts for the image record: its package manifest, properties. */
  report(facts: { icicle?: string; properties?: Record<string, unknown> }): void;
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  input?: string;
  /** Called with each output line as it comes (progress from a long tool). */
  onLine?: (line: string) => void;
}

/** A guest as a plugin asks for it: the domain spec without what the engine decides (name, accelerator), sizes defaulted. */
export interface GuestSpec extends Omit<DomainSpec, 'name' | 'accel' | 'memoryMiB' | 'vcpus' | 'restoreFrom'> {
  /** Part of the domain name, which also carries the image id: `install`, `customize`… */
  purpose: string;
  memoryMiB?: number;
  vcpus?: number;
  /** Seconds without disk or network activity before `install_stalled`; the configured default otherwise. */
  stallSeconds?: number;
  /**
   * Resume a checkpoint (see RunningGuest.checkpoint) instead of booting;
   * refused with `checkpoint_unusable` unless `identity` is what this
   * hypervisor would take one with now.
   */
  restore?: { state: string; identity: string };
  /** Called once the guest runs, with what may be done to it while it does. */
  onStarted?: (guest: RunningGuest) => void;
}

export interface RunningGuest {
  /**
   * Pauses the guest and saves its memory and devices to `stateFile`, its
   * disks flushed; resolves to the identity a restore must match. Null when
   * the hypervisor in use cannot restore one.
   */
  checkpoint: ((stateFile: string) => Promise<string>) | null;
  /** Lets the guest run on after a checkpoint. */
  resume(): Promise<void>;
  /** Destroys the guest now; the run rejects with `reason` instead of waiting for it to power off. */
  abandon(reason: Error): void;
}

/** A build step's failure with a stable code: part of the shared vocabulary, re-exported for plugins. */
export { StepError } from '../model/errors.js';
