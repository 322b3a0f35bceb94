import type { Config } from './config/index.js';

export type DaemonErrorCode = 'not_implemented';

export class DaemonError extends Error {
  constructor(
    readonly code: DaemonErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DaemonError';
  }
}

/** Starts the build server with a loaded configuration. Not written yet: the engine comes in a later issue. */
export async function startDaemon(config: Config): Promise<void> {
  void config;
  throw new DaemonError('not_implemented', 'the build server is not implemented yet; only --help, --version and --print-config work');
}
