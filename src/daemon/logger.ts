import pino, { type Logger } from 'pino';

/**
 * The daemon's own log: JSON lines (pino) on stderr or in a file, one object
 * per line with `reqId` on request lines and `imageId` on build lines. The
 * file is reopened on SIGHUP so that logrotate can move it away. Secrets are
 * never passed to it; the redaction list is a second line of defence.
 */

export type LogLevel = 'trace' | 'debug' | 'info';

export interface DaemonLog {
  readonly logger: Logger;
  /** The file logged to, or null for stderr. */
  readonly file: string | null;
  /** Reopens the file (after a rotation); nothing for stderr. */
  reopen(): void;
  /** Writes out what is buffered. */
  flush(): void;
}

/** `--debug` logs everything, `--verbose` every request and transition, the default start, stop, warnings, errors and builds' ends. */
export function logLevel(config: { debug: boolean; verbose: boolean }): LogLevel {
  return config.debug ? 'trace' : config.verbose ? 'debug' : 'info';
}

/** Field names whose values never reach the log, whatever a caller passes by mistake. */
const REDACT = ['secret', '*.secret', 'clients', '*.clients', 'authorization', '*.authorization', '*.headers.authorization', 'oauth_signature', '*.oauth_signature', 'key_pem', 'credentials', '*.credentials'];

export function createDaemonLog(opts: { file: string | null; level: LogLevel }): DaemonLog {
  // Synchronous writes: a line logged right before exit is not lost, and volume is low.
  const destination = opts.file === null ? pino.destination({ fd: 2, sync: true }) : pino.destination({ dest: opts.file, append: true, mkdir: true, sync: true, mode: 0o640 });
  const logger = pino(
    {
      name: 'imagefactoryd',
      level: opts.level,
      base: { pid: process.pid },
      redact: { paths: REDACT, censor: '***' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
  return {
    logger,
    file: opts.file,
    reopen: () => {
      if (opts.file !== null) destination.reopen();
    },
    flush: () => destination.flushSync(),
  };
}
