/**
 * The cloud-plugin interface: what a target build asks of the plugin that
 * serves its target (`ec2`, `vsphere`, `docker`…). Like the OS plugins'
 * `BuildStep` (src/os/plugin.ts) and the hypervisor layer (src/hypervisor/types.ts):
 * one small interface, one folder per cloud behind it. See docs/clouds.md.
 *
 * A target build has two steps, each a `{ run, undo }` pair:
 *
 * - `adapt`: makes a copy-on-write qcow2 overlay of the frozen base (the base
 *   is its backing file and is only ever read) and brings into it what the
 *   cloud needs (cloud-init, drivers in the initramfs, a serial console…),
 *   booting the overlay at most once, with the distribution's own packages;
 * - `convert`: turns the overlay into the target's format in a temporary
 *   path of the workdir, renamed to `outputPath` only when complete.
 *
 * Both are repeatable (a restored build re-runs the step it was in) and their
 * undo is safe after a partial run and safe to run twice.
 */
import type { GuestSpec, RunOptions, RunResult } from '../os/plugin.js';
import type { Template } from '../tdl/index.js';
import type { TargetContent } from './target-content.js';

export interface CloudStep {
  run(ctx: CloudStepContext): Promise<void>;
  undo(ctx: CloudStepContext): Promise<void>;
}

export interface CloudPlugin {
  /**
   * Checks the target's parameters before any work (the engine may call it at
   * submission); throws `StepError('bad_parameter', …)` naming the parameter.
   */
  check(target: string, parameters: Record<string, unknown>, settings: CloudSettings): void;
  adapt: CloudStep;
  convert: CloudStep;
}

/** A cloud plugin module's default export: called once at discovery, like an OS plugin's. */
export type CloudPluginFactory = () => CloudPlugin | Promise<CloudPlugin>;

/** The frozen base image a target is made from. */
export interface BaseDisk {
  /** The base body: opened read-only, never written. */
  path: string;
  format: 'qcow2' | 'raw';
}

/** Configuration keys that give target parameters their defaults (the original's keys). */
export interface CloudSettings {
  rhevm_image_format: 'qcow2' | 'raw';
  openstack_image_format: 'qcow2' | 'raw';
}

/** The pool's checksum (src/pool `WorkerPool.sha256`): CPU-heavy hashing off the event loop. */
export interface ChecksumPool {
  sha256(file: string, options?: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void }): Promise<string>;
}

/** What the engine supplies to a cloud step. */
export interface CloudStepContext {
  /** The target image's id: names its guest (`imagefactory-<id>-adapt`). */
  imageId: string;
  /** The target as requested (`ec2`, `azure`…); one plugin may serve several. */
  target: string;
  base: BaseDisk;
  /** The base image's template, parsed once by the engine. */
  template: Template;
  /** The target image's parameters (the original's names: `vsphere_vmdk_format`, `compress`…). */
  parameters: Record<string, unknown>;
  settings: CloudSettings;
  /**
   * What target_content.xml asks for this target and the base's OS (the most
   * specific matching `include`), or null: the adapt step installs what of it
   * the base lacks. See `targetContentFor` in ./target-content.ts.
   */
  targetContent: TargetContent | null;
  /** Private scratch directory of this build (overlay, temp outputs); the engine creates and removes it. */
  workdir: string;
  /** Where the finished target body must be; written only by a rename of a complete file. */
  outputPath: string;
  /** Aborted on cancel, timeout or shutdown. */
  signal: AbortSignal;
  log(line: string): void;
  /** Percent of the current step (0–100) and what it is doing. */
  progress(percent: number, activity: string): void;
  /** Spawns a program in its own process group (killed on abort), output to the build log. As `StepContext.run`. */
  run(command: string, args: string[], options?: RunOptions): Promise<RunResult>;
  /** Boots a guest and watches it until it powers off; as `StepContext.runGuest`. */
  runGuest(spec: GuestSpec): Promise<void>;
  pool: ChecksumPool;
  /** Facts for the target image's record: properties merged in, and the ICICLE after an adaptation boot. */
  report(facts: { icicle?: string; properties?: Record<string, unknown> }): void;
}

/** The exact conversion performed, recorded in the target's `properties.conversion`. */
export interface ConversionReport {
  /** The body's format as a cloud names it (`raw`, `qcow2`, `vmdk`, `vhd`, `vhdx`, `tar.gz`, `ova`, `oci-archive`…). */
  format: string;
  /** Glance's words for it, used by the OpenStack push: `disk_format` and `container_format`. */
  disk_format: string;
  container_format: 'bare' | 'ova' | 'docker';
  /** Every external command that produced the body, in order, as run (paths relative to the workdir). */
  commands: string[];
  /** The disk's virtual size in bytes (for disk formats), after any alignment. */
  virtual_size?: number;
  seconds: number;
  [detail: string]: unknown;
}
