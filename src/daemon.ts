import { join } from 'node:path';
import { PROJECT_ROOT } from './version.js';
import type { Config } from './config/index.js';
import { Engine } from './engine/engine.js';
import { DEFAULT_INSPECT_PORT, startInspectRelay, type InspectRelay } from './engine/inspect.js';
import { createApiServer } from './api/server.js';
import { presentImage } from './api/present.js';
import type { PackageCache } from './os/debian/package-cache.js';
import type { DownloadCacheOptions } from './os/media/download-cache.js';

export type DaemonErrorCode = 'insecure_refused' | 'inspect_unavailable';

export class DaemonError extends Error {
  constructor(
    readonly code: DaemonErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DaemonError';
  }
}

/** Plugin `.info` files shipped with the checkout, searched after the configured directory. */
export const SHIPPED_PLUGINS = join(PROJECT_ROOT, 'conf', 'plugins.d');

const MiB = 1024 * 1024;

/** The engine's download and package caches, as the configuration sets them. */
export function cachesOf(config: Config): { mediaCache: DownloadCacheOptions; packageCache: PackageCache | null } {
  return {
    mediaCache: { dir: config.media_cache, maxBytes: config.media_cache_max_mb * MiB, ...(config.installer_media_dir ? { mirrorDir: config.installer_media_dir } : {}) },
    packageCache: config.package_cache === null ? null : { dir: config.package_cache, maxBytes: config.package_cache_max_mb * MiB },
  };
}

export interface RunningDaemon {
  url: string;
  port: number;
  /** The Stately inspector relay's WebSocket URL, with `inspect` on. */
  inspectUrl: string | null;
  stop(): Promise<void>;
}

/**
 * Starts the build server: the engine (which recovers unfinished builds) and
 * the REST API. Resolves once it listens.
 */
export async function startDaemon(config: Config, log: (line: string) => void = (l) => process.stderr.write(`imagefactoryd: ${l}\n`)): Promise<RunningDaemon> {
  // Secure by default: until HTTPS and OAuth exist, plain or unauthenticated serving must be asked for explicitly.
  if (!config.no_ssl) throw new DaemonError('insecure_refused', 'HTTPS is not available in this version yet; start with --no_ssl to serve plain HTTP (on a trusted network only)');
  if (!config.no_oauth) throw new DaemonError('insecure_refused', 'OAuth is not available in this version yet; start with --no_oauth to serve without authentication (on a trusted network only)');

  let baseUrl = '';
  // --- inspect relay: started before the engine, so that recovered builds are relayed too ---
  const relay: InspectRelay | null =
    config.inspect === false
      ? null
      : await startInspectRelay({ port: config.inspect === true ? DEFAULT_INSPECT_PORT : config.inspect, log }).catch((e: Error) => {
          throw new DaemonError('inspect_unavailable', `${e.message}; choose another with --inspect=PORT`);
        });
  if (relay) log(`inspect: build machines relayed to Stately's inspector at ${relay.url} (bridge page: ${relay.httpUrl}/); see docs/inspector.md`);
  const closeRelay = async () => void (await relay?.close());
  // --- end inspect relay ---
  const engine = await Engine.create({
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
    ...cachesOf(config),
    present: (image) => ({ [image.kind === 'BaseImage' ? 'base_image' : image.kind === 'TargetImage' ? 'target_image' : 'provider_image']: presentImage(image, baseUrl) }),
    log,
    ...(relay ? { inspect: relay.inspect } : {}),
  }).catch(async (e: unknown) => {
    await closeRelay();
    throw e;
  });
  // Access lines only when asked for; faults (with their correlation id) always.
  const apiLog = config.debug || config.verbose ? log : (line: string) => void (/^(internal error|could not answer)/.test(line) && log(line));
  const api = createApiServer(engine, { log: apiLog });
  let port: number;
  try {
    port = await api.listen(config.port, config.address);
  } catch (e) {
    await engine.shutdown();
    await closeRelay();
    throw e;
  }
  const host = config.address.includes(':') ? `[${config.address}]` : config.address;
  baseUrl = `http://${host}:${port}`;
  return {
    url: baseUrl,
    port,
    inspectUrl: relay?.url ?? null,
    async stop() {
      await api.close();
      await engine.shutdown();
      await closeRelay();
    },
  };
}
