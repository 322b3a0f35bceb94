import type { ProviderPush, PushOptions } from '../../clouds/providers/types.js';
import type { TargetContentFile } from '../../clouds/target-content.js';
import type { CloudPlugin, CloudSettings } from '../../clouds/types.js';
import type { BuildKind, ImageRecord } from '../../model/index.js';
import type { OsPlugin, RunOptions, RunResult, StepContext } from '../../os/plugin.js';
import type { WorkerPool } from '../../pool/index.js';
import type { BodyStore, ImagePatch } from '../../store/index.js';
import type { Template } from '../../tdl/index.js';

/**
 * One step of a build machine, like a Packer step: `run` does the work of
 * one working state, `undo` takes it back. `run` must be repeatable (a
 * restored build runs again the step it was in); `undo` must be safe after a
 * partial run and safe to run twice.
 */
export interface EngineStep {
  /** The share of percent_complete the step covers, so progress only moves forward. */
  readonly progress: readonly [number, number];
  /** Whether a build restored in this step (after a daemon restart) may run it again; if not it fails `interrupted`. */
  canResume(env: StepEnv): Promise<boolean>;
  /** Resolves `'cache_hit'` when the build turned out to be a COMPLETE image already: the machine goes straight to complete. */
  run(env: StepEnv, signal: AbortSignal): Promise<void | StepOutcome>;
  undo(env: StepEnv): Promise<void>;
  /**
   * The step works with the provider credentials, which live only in memory:
   * a build restored in it, or before it, ends `credentials_lost`.
   */
  readonly needsCredentials?: boolean;
}

export type StepOutcome = 'cache_hit';

/** What a step works with: its build, and the engine's services for it. */
export interface StepEnv {
  readonly id: string;
  readonly kind: BuildKind;
  /** The build's record as the catalog has it now. */
  image(): ImageRecord;
  /** The build's template, parsed once. */
  template(): Template;
  /** Private scratch directory of the build, named after its id so leftovers can be reaped. */
  readonly workdir: string;
  /** Where the OS plugin leaves the finished disk for the snapshot step. */
  readonly diskPath: string;
  readonly bodies: BodyStore;
  readonly pool: WorkerPool;
  log(line: string): void;
  /** Progress within the step (0–100), scaled into the step's range. */
  progress(percent: number, activity: string): void;
  /** Writes facts to the build's record. */
  update(patch: ImagePatch): void;
  /** The OS plugin that builds the template, found once per build. */
  osPlugin(): Promise<OsPlugin>;
  /** Whether an OS plugin for the template is loaded (without loading it). */
  hasOsPlugin(): boolean;
  /** The `.info` identity of the OS plugin that builds the template. */
  osPluginIdentity(): { id: string; version: string };
  /** The newest COMPLETE image of this build's kind with this cache key, or null. */
  cached(key: string): ImageRecord | null;
  /** Makes `image`'s body this build's body too (a hard link) and takes its facts: the build is that image again. */
  adopt(image: ImageRecord): Promise<void>;
  /** The context the OS plugin's steps get. */
  pluginContext(signal: AbortSignal): StepContext;
  /** Runs a program in its own process group, output to the build log; killed on abort. */
  run(command: string, args: string[], signal: AbortSignal, options?: RunOptions): Promise<RunResult>;
  /** The image this build is made from (a target's base, a provider's target); `parent_missing` when it is gone. */
  parent(): ImageRecord;
  /** The cloud plugin serving the build's target and its `.info` identity; `plugin_missing` when none does. */
  cloudPlugin(): { plugin: CloudPlugin; identity: { id: string; version: string } };
  /** What target and provider steps take from the configuration. */
  readonly cloud: CloudEnv;
  /** A provider build's credentials: held in memory only, so null once the daemon has restarted. */
  credentials(): string | null;
}

export interface CloudEnv {
  /** Target parameter defaults (`rhevm_image_format`, `openstack_image_format`). */
  settings: CloudSettings;
  /** The target content file, as it is now. */
  targetContent(): TargetContentFile;
  /** Limits of a push (parallel requests, timeouts). */
  push: PushOptions;
  /** The provider push for a target, loaded when first needed; `not_supported` when there is none. */
  pushFor(target: string): Promise<ProviderPush>;
}
