import type { Config } from '../config/index.js';
import { startDaemon, type RunningDaemon } from '../daemon.js';
import { VERSION } from '../version.js';
import { DEFAULT_LOG_FILE, DEFAULT_PID_FILE, reportStart } from './detach.js';
import { createDaemonLog, logLevel, type DaemonLog } from './logger.js';
import { acquirePidFile, type PidFile } from './pidfile.js';

/**
 * The running daemon's life, in the foreground or detached: log, pid file,
 * start, then serve until SIGTERM or SIGINT (SIGHUP reopens the log file),
 * and stop within the configured bound.
 */

/** Added to `shutdown_timeout`: how long closing the engine may take before the daemon gives up and exits 1. */
export const STOP_GRACE_MS = 10_000;

/** The daemon could not start; already logged (to a log file) and reported (to the starting command). */
export class StartFailure extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'StartFailure';
  }
}

export interface ServeOptions {
  /** Started by `detach()`: report the start over IPC, default pid and log files. */
  detached: boolean;
  /** Configuration warnings, for the log. */
  warnings: readonly string[];
  /** Where the foreground daemon prints its "listening on" line. */
  out: { write(s: string): unknown };
  /** Whether a failure to start is an error of the operator's input (exit 2) or a fault (1), and its message. */
  describeFailure: (e: unknown) => { exitCode: number; message: string };
}

/** Serves until a stop signal; resolves with the exit code. */
export async function serve(config: Config, opts: ServeOptions): Promise<number> {
  const logFile = config.log_file ?? (opts.detached ? DEFAULT_LOG_FILE : null);
  const pidPath = config.pid_file ?? (opts.detached ? DEFAULT_PID_FILE : null);
  let log: DaemonLog | null = null;
  let pid: PidFile | null = null;
  let daemon: RunningDaemon;
  try {
    log = createDaemonLog({ file: logFile, level: logLevel(config) });
    for (const w of opts.warnings) log.logger.warn({}, w);
    pid = pidPath === null ? null : acquirePidFile(pidPath);
    daemon = await startDaemon(config, log.logger);
  } catch (e) {
    pid?.release();
    const failure = opts.describeFailure(e);
    // On stderr the command says it in plain words; a log file gets it too.
    if (log?.file) log.logger.error({ exitCode: failure.exitCode }, `cannot start: ${failure.message}`);
    if (opts.detached) await reportStart({ type: 'failed', exitCode: failure.exitCode, message: failure.message });
    throw new StartFailure(failure.exitCode, failure.message);
  }
  const { logger } = log;
  // Listening for signals before the start is announced: a SIGTERM sent the moment a script hears "listening" or "ready" must stop us cleanly, not kill us.
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => {
    const onHup = () => {
      log!.reopen();
      logger.info({ logFile }, 'SIGHUP: log file reopened');
    };
    const onStop = (s: NodeJS.Signals) => {
      process.off('SIGTERM', onStop).off('SIGINT', onStop);
      // A second signal while stopping is noted, not obeyed: the stop has a bound of its own.
      process.on('SIGTERM', again).on('SIGINT', again);
      resolve(s);
    };
    const again = (s: NodeJS.Signals) => logger.warn({ signal: s }, `${s}: already stopping (at most ${config.shutdown_timeout} s + ${STOP_GRACE_MS / 1000} s)`);
    process.on('SIGHUP', onHup).on('SIGTERM', onStop).on('SIGINT', onStop);
  });

  // The line scripts wait for comes first, on stdout; the log says it in other words, so that a reader of both sees one "listening on".
  if (!opts.detached) opts.out.write(`imagefactoryd ${VERSION} listening on ${daemon.url}\n`);
  logger.info({ url: daemon.url, version: VERSION, pidFile: pidPath, logFile, shutdown: config.shutdown }, `imagefactoryd ${VERSION} serving the REST API at ${daemon.url}`);
  if (opts.detached) await reportStart({ type: 'ready', url: daemon.url, pid: process.pid, metricsUrl: daemon.metricsUrl });

  const signal = await stopRequested;

  logger.info({ signal, shutdown: config.shutdown, shutdownTimeout: config.shutdown_timeout }, `${signal}: stopping; running builds: ${config.shutdown === 'cancel' ? 'cancelled' : 'checkpointed, resumed at the next start'}`);
  let code = 0;
  const bound = config.shutdown_timeout * 1000 + STOP_GRACE_MS;
  let timer: NodeJS.Timeout | undefined;
  const overran = new Promise<true>((resolve) => {
    timer = setTimeout(() => resolve(true), bound);
  });
  const stopped = await Promise.race([daemon.stop().then(() => false as const), overran]).catch((e: unknown) => {
    logger.error({ err: e instanceof Error ? e.message : String(e) }, 'stopping failed');
    code = 1;
    return false as const;
  });
  clearTimeout(timer);
  if (stopped === true) {
    logger.error({ boundSeconds: bound / 1000 }, `stop did not finish within ${bound / 1000} s; exiting anyway`);
    code = 1;
  }
  pid?.release();
  logger.info({ exitCode: code }, `stopped; exit code ${code}`);
  log.flush();
  return code;
}
