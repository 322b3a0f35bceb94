/** Exit codes of the `imagefactory` client, as docs/cli.md lists them. */
export const EXIT = {
  /** The command did what it was asked; a build ended COMPLETE. */
  ok: 0,
  /** A build ended FAILED, CANCELLED or another final status, or the daemon refused the request. */
  failed: 1,
  /** The command line is wrong: unknown option, missing argument, unreadable file. */
  usage: 2,
  /** The daemon could not be reached (refused, unknown host, TLS failure, timeout). */
  unreachable: 3,
  /** A second Ctrl-C while waiting: stop at once, leaving the build as it is. */
  interrupted: 130,
} as const;

/** A mistake on the command line; reported with a usage hint and exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The subcommand whose `--help` the hint points to. */
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}
