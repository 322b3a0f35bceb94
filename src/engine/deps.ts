import type { InspectionEvent } from 'xstate';
import type { ProviderPush, PushOptions } from '../clouds/providers/types.js';
import type { CloudSettings } from '../clouds/types.js';
import type { HypervisorSession } from '../hypervisor/session.js';
import type { DownloadCache } from '../os/media/download-cache.js';
import type { PluginRegistry } from '../plugins/index.js';
import type { WorkerPool } from '../pool/index.js';
import type { BodyStore, Catalog, StorageLock } from '../store/index.js';
import type { ParseOptions, ParseResult } from '../tdl/index.js';
import type { BuildLogs } from './build-log.js';

/** The limits and places the engine works with, from the configuration. */
export interface EngineSettings {
  /** The warehouse directory: bodies, catalog, logs, failure artifacts. */
  storagePath: string;
  /** Where builds get their private workdirs (the configuration's `imgdir`). */
  workRoot: string;
  /** Whole-build limit in seconds, counted from submission. */
  timeoutSeconds: number;
  /** Per working state limits in seconds, e.g. `{ installing: 1200 }`. */
  phaseLimits: Record<string, number>;
  maxConcurrentLocal: number;
  maxConcurrentProvider: number;
  /** Builds waiting for a slot beyond which submissions are refused. */
  maxQueued: number;
  requireRootPassword: boolean;
  /** Seconds without guest disk or network activity before `install_stalled`. */
  stallSeconds: number;
  /** Defaults of target parameters: the configuration's `rhevm_image_format` and `openstack_image_format`. */
  cloud: CloudSettings;
  /** The target content file (`target_content`); null: no target content. */
  targetContentPath: string | null;
  /** Limits of a provider push: `push_parallel_requests`, `push_request_timeout`, `push_timeout`. */
  push: PushOptions;
}

/** The provider pushes by target. */
export interface ProviderPushes {
  /** The targets a push serves, known without loading any push. */
  readonly targets: readonly string[];
  /** The push of a target, loaded when first needed (the EC2 one brings the AWS SDK, which the daemon need not load to start). */
  load(target: string): Promise<ProviderPush>;
}

/** Everything the engine works through, assembled by the composition root (src/compose.ts). */
export interface EngineDeps {
  settings: EngineSettings;
  catalog: Catalog;
  bodies: BodyStore;
  logs: BuildLogs;
  registry: PluginRegistry;
  pool: WorkerPool;
  /** Downloaded install media, shared by builds. */
  media: DownloadCache;
  hypervisor: HypervisorSession;
  /** Parses a template; called once per build per process. */
  parseTemplate: (text: string, options: ParseOptions) => ParseResult;
  /** The daemon's own log (not a build's). */
  log: (line: string) => void;
  /** This process's hold on the storage path, given up at shutdown; null when the caller manages it. */
  storageLock: StorageLock | null;
  /** The provider pushes (src/clouds/providers), loaded on first use; tests give their own. */
  providers: ProviderPushes;
  /** Observers of every build actor's inspection events, after the engine has handled them. */
  inspect?: (event: InspectionEvent, imageId: string) => void;
}
