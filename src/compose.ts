import { join } from 'node:path';
import type { InspectionEvent } from 'xstate';
import type { Config } from './config/index.js';
import type { PushTarget } from './clouds/providers/types.js';
import { BuildLogs } from './engine/build-log.js';
import type { EngineDeps, EngineSettings, ProviderPushes } from './engine/deps.js';
import { Engine } from './engine/engine.js';
import { hypervisorSession, runtimeDirFor, type AccelSetting, type HypervisorSetting } from './hypervisor/index.js';
import { contentFetchOptions, type ContentFetchOptions } from './os/content-fetch.js';
import type { PackageCache } from './os/debian/package-cache.js';
import type { TreeCacheOptions } from './os/debian/tree-cache.js';
import { DownloadCache, type DownloadCacheOptions } from './os/media/download-cache.js';
import { builtinPlugins } from './plugins/builtin.js';
import { discoverPlugins } from './plugins/index.js';
import { WorkerPool } from './pool/index.js';
import { BodyStore, Catalog, lockStorage, type StorageLock } from './store/index.js';
import { parseTdl } from './tdl/index.js';
import { PROJECT_ROOT } from './version.js';

/**
 * The composition root: the one place where the engine's collaborators are
 * made from the configuration. The daemon, `imagefactory build` and the
 * tests all assemble their engine here.
 */

/** Plugin `.info` files shipped with the checkout, searched after the configured directory. */
export const SHIPPED_PLUGINS = join(PROJECT_ROOT, 'conf', 'plugins.d');

const MiB = 1024 * 1024;

/**
 * The shipped provider pushes (src/clouds/providers), imported on first use:
 * the EC2 push brings the AWS SDK, which slows a daemon's start by a second
 * or more on a busy machine. The record makes TypeScript insist on every
 * target a push serves.
 */
export const BUILTIN_PUSHES: ProviderPushes = {
  targets: Object.keys({ ec2: true, 'openstack-kvm': true, libvirt: true, docker: true } satisfies Record<PushTarget, true>),
  load: async (target) => (await import('./clouds/providers/index.js')).providerFor(target),
};

/** What the engine is made of, in the configuration's terms. */
export interface EngineSetup extends Partial<EngineSettings> {
  storagePath: string;
  workRoot: string;
  timeoutSeconds: number;
  pluginDirs: string[];
  maxConcurrentLocal: number;
  maxConcurrentProvider: number;
  poolThreads?: number;
  hypervisor?: HypervisorSetting;
  accel?: AccelSetting;
  libvirtUri?: string;
  /** The .deb directory shared by Debian/Ubuntu builds and its bound; handed to the plugins that use it. */
  packageCache?: PackageCache | null;
  /** Bootstrapped root trees kept between builds; handed to the plugins that use them. */
  treeCache?: TreeCacheOptions | null;
  /** Downloaded install media; `<workRoot>/../media` without a bound by default. */
  mediaCache?: DownloadCacheOptions;
  /** Limits of fetching template url contents and the file: directories allowed (`file_url_dirs`); none allowed by default. */
  contentFetch?: ContentFetchOptions;
}

/** The engine setup a configuration describes. */
export function engineSetupOf(config: Config): EngineSetup {
  return {
    storagePath: config.image_manager_args.storage_path,
    workRoot: config.imgdir,
    timeoutSeconds: config.timeout,
    phaseLimits: config.phase_timeouts,
    maxConcurrentLocal: config.max_concurrent_local_sessions,
    maxConcurrentProvider: config.max_concurrent_ec2_sessions,
    maxQueued: config.max_queued_builds,
    pluginDirs: [config.plugins, SHIPPED_PLUGINS],
    requireRootPassword: config.tdl_require_root_pw,
    hypervisor: config.hypervisor,
    accel: config.accel,
    libvirtUri: config.libvirt_uri,
    stallSeconds: config.install_stall_seconds,
    mediaCache: { dir: config.media_cache, maxBytes: config.media_cache_max_mb * MiB, fileUrlDirs: config.file_url_dirs, ...(config.installer_media_dir ? { mirrorDir: config.installer_media_dir } : {}) },
    packageCache: config.package_cache === null ? null : { dir: config.package_cache, maxBytes: config.package_cache_max_mb * MiB },
    treeCache: config.tree_cache === null ? null : { dir: config.tree_cache, maxBytes: config.tree_cache_max_mb * MiB },
    contentFetch: contentFetchOptions(config),
    cloud: { rhevm_image_format: config.rhevm_image_format, openstack_image_format: config.openstack_image_format },
    targetContentPath: config.target_content,
    push: { parallelRequests: config.push_parallel_requests, requestTimeoutMs: config.push_request_timeout * 1000, budgetMs: config.push_timeout * 1000 },
  };
}

export interface AssembleOptions {
  /** Who holds the storage, as a second user is told: `imagefactoryd`, `imagefactory build`. */
  program?: string;
  log?: (line: string) => void;
  inspect?: (event: InspectionEvent, imageId: string) => void;
  /** Collaborators to use instead of the ones made here (tests). */
  replace?: Partial<Omit<EngineDeps, 'settings'>>;
}

/** Makes every collaborator of the engine from `setup`, then starts the engine (which recovers unfinished builds). */
export async function assembleEngine(setup: EngineSetup, opts: AssembleOptions = {}): Promise<Engine> {
  const settings: EngineSettings = {
    storagePath: setup.storagePath,
    workRoot: setup.workRoot,
    timeoutSeconds: setup.timeoutSeconds,
    phaseLimits: setup.phaseLimits ?? {},
    maxConcurrentLocal: setup.maxConcurrentLocal,
    maxConcurrentProvider: setup.maxConcurrentProvider,
    maxQueued: setup.maxQueued ?? 32,
    requireRootPassword: setup.requireRootPassword ?? false,
    stallSeconds: setup.stallSeconds ?? 300,
    cloud: setup.cloud ?? { rhevm_image_format: 'qcow2', openstack_image_format: 'qcow2' },
    // Engines made without a configuration (tests) have no target content unless they name a file.
    targetContentPath: setup.targetContentPath ?? null,
    push: setup.push ?? {},
  };
  const log = opts.log ?? (() => undefined);
  const made = opts.replace ?? {};
  // One user of a storage path at a time: two would resume the same builds and reap each other's guests.
  const storageLock = made.storageLock !== undefined ? made.storageLock : lockStorage(setup.storagePath, opts.program ?? 'imagefactory');
  try {
    return await Engine.start(await collaborators(setup, settings, { ...opts, log }, storageLock));
  } catch (e) {
    storageLock?.release();
    throw e;
  }
}

async function collaborators(setup: EngineSetup, settings: EngineSettings, opts: AssembleOptions & { log: (line: string) => void }, storageLock: StorageLock | null): Promise<EngineDeps> {
  const { log } = opts;
  const made = opts.replace ?? {};
  const bodies = made.bodies ?? new BodyStore(setup.storagePath);
  bodies.ensureDir();
  const deps: EngineDeps = {
    settings,
    catalog: made.catalog ?? Catalog.open(join(setup.storagePath, 'catalog.sqlite')),
    bodies,
    logs: made.logs ?? new BuildLogs(join(setup.storagePath, 'logs')),
    registry:
      made.registry ??
      (await discoverPlugins(setup.pluginDirs, { builtins: builtinPlugins({ packageCache: setup.packageCache ?? null, treeCache: setup.treeCache ?? null, ...(setup.contentFetch ? { contentFetch: setup.contentFetch } : {}) }) })),
    pool: made.pool ?? new WorkerPool(setup.poolThreads ? { maxThreads: setup.poolThreads } : {}),
    media: made.media ?? new DownloadCache(setup.mediaCache ?? { dir: join(setup.workRoot, '..', 'media') }),
    hypervisor:
      made.hypervisor ??
      hypervisorSession({
        hypervisor: setup.hypervisor ?? 'auto',
        accel: setup.accel ?? 'auto',
        libvirtUri: setup.libvirtUri ?? 'qemu:///system',
        // A unix socket path cannot exceed 107 bytes: never derive it from the configured storage path.
        qemuRunDir: runtimeDirFor(setup.storagePath),
        log,
      }),
    // The same file: directories at submission and when a step parses the template again.
    parseTemplate: made.parseTemplate ?? ((text, options) => parseTdl(text, { ...options, fileUrlDirs: setup.contentFetch?.fileUrlDirs ?? [] })),
    providers: made.providers ?? BUILTIN_PUSHES,
    log,
    storageLock,
    ...(opts.inspect ? { inspect: opts.inspect } : {}),
  };
  return deps;
}
