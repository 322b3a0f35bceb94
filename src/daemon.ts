import type { Logger } from 'pino';
import type { Config } from './config/index.js';
import { assembleEngine, engineSetupOf } from './compose.js';
import { DEFAULT_INSPECT_PORT, startInspectRelay, type InspectRelay } from './inspect/stately-relay.js';
import { attachCallbacks } from './api/callbacks.js';
import { createApiServer } from './api/server.js';
import { presentImage } from './api/present.js';
import { BuildMetrics } from './api/metrics.js';
import { DOMAIN_PREFIX } from './hypervisor/index.js';
import { listQemuProcesses } from './hypervisor/processes.js';
import { KINDS } from './model/index.js';
import { logBuildEvents } from './daemon/build-events.js';
import { prepareFrontDoor } from './daemon/front-door.js';
import { startMetricsServer, type MetricsServer } from './daemon/metrics-server.js';
import { stopBuilds, type StopReport } from './daemon/shutdown.js';

export type DaemonErrorCode = 'inspect_unavailable' | 'metrics_unavailable';

export class DaemonError extends Error {
  constructor(
    readonly code: DaemonErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DaemonError';
  }
}

export interface RunningDaemon {
  url: string;
  port: number;
  /** The Stately inspector relay's WebSocket URL, with `inspect` on. */
  inspectUrl: string | null;
  /** The loopback-only metrics URL, with `metrics_port` set. */
  metricsUrl: string | null;
  /** SHA-256 fingerprint of the HTTPS certificate; null over plain HTTP. */
  fingerprint256: string | null;
  /** Stops accepting requests, stops running builds as `shutdown` says (within `shutdown_timeout`), and closes the engine. */
  stop(): Promise<StopReport>;
}

/**
 * Starts the build server: the front door (TLS, OAuth), the engine (which
 * recovers unfinished builds) and the REST API. Resolves once it listens.
 */
export async function startDaemon(config: Config, logger: Logger): Promise<RunningDaemon> {
  const log = (line: string) => logger.info({}, line);
  const door = await prepareFrontDoor(config, logger);

  let baseUrl = '';
  // --- inspect relay: started before the engine, so that recovered builds are relayed too ---
  const relay: InspectRelay | null =
    config.inspect === false
      ? null
      : await startInspectRelay({ port: config.inspect === true ? DEFAULT_INSPECT_PORT : config.inspect, log }).catch((e: Error) => {
          door.dispose();
          throw new DaemonError('inspect_unavailable', `${e.message}; choose another with --inspect=PORT`);
        });
  if (relay) log(`inspect: build machines relayed to Stately's inspector at ${relay.url} (bridge page: ${relay.httpUrl}/); see docs/inspector.md`);
  const closeRelay = async () => {
    await relay?.close();
    door.dispose();
  };
  // --- end inspect relay ---
  const engine = await assembleEngine(engineSetupOf(config), { program: 'imagefactoryd', log, ...(relay ? { inspect: relay.inspect } : {}) }).catch(async (e: unknown) => {
    await closeRelay();
    throw e;
  });
  const stopCallbacks = attachCallbacks(engine, { present: (image) => ({ [KINDS[image.kind].singular]: presentImage(image, baseUrl) }) });
  const metrics = new BuildMetrics(engine, { processMetrics: true, runningGuests: () => listQemuProcesses().filter((p) => p.name.startsWith(DOMAIN_PREFIX)).length });
  const stopBuildLog = logBuildEvents(engine, logger);
  const api = createApiServer(engine, { server: door.server, logger, oauth: door.oauth, metrics });
  let port: number;
  let metricsServer: MetricsServer | null = null;
  const release = async () => {
    stopCallbacks();
    stopBuildLog();
    metrics.close();
    await engine.shutdown();
    await closeRelay();
  };
  try {
    port = await api.listen(config.port, config.address);
    if (config.metrics_port !== null) {
      metricsServer = await startMetricsServer(metrics, config.metrics_port).catch((e: Error) => {
        throw new DaemonError('metrics_unavailable', `the metrics port 127.0.0.1:${config.metrics_port} cannot be used: ${e.message}; choose another metrics_port`);
      });
      logger.info({ metricsUrl: metricsServer.url }, `metrics without OAuth on ${metricsServer.url} (loopback only)`);
    }
  } catch (e) {
    await api.close();
    await release();
    throw e;
  }
  const host = config.address.includes(':') ? `[${config.address}]` : config.address;
  // The scheme actually served: callbacks and every href say https when it is.
  baseUrl = `${door.scheme}://${host}:${port}`;
  return {
    url: baseUrl,
    port,
    inspectUrl: relay?.url ?? null,
    metricsUrl: metricsServer?.url ?? null,
    fingerprint256: door.tls?.fingerprint256 ?? null,
    async stop() {
      await api.close();
      await metricsServer?.close();
      const report = await stopBuilds(engine, config.shutdown, config.shutdown_timeout * 1000, (fields, msg) => logger.info(fields, msg));
      const ended = new Set(report.final.map((f) => f.id));
      for (const b of report.unfinished) {
        if (!ended.has(b.id)) logger.info({ imageId: b.id, kind: b.kind, phase: b.phase }, `shutdown: build checkpointed in state ${b.phase}; it resumes at the next start`);
      }
      for (const f of report.final) logger.info({ imageId: f.id, status: f.status }, `shutdown: build ended ${f.status}`);
      if (report.timedOut) logger.warn({ shutdownTimeout: config.shutdown_timeout }, `shutdown: builds still running after ${config.shutdown_timeout} s are checkpointed`);
      await release();
      return report;
    },
  };
}
