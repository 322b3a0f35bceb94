/** A typed failure: a stable code for programs and a message for people. */
export interface BuildError {
  code: string;
  message: string;
  /** Extra facts: command name, exit code, output tail, screenshot path… */
  details?: Record<string, unknown>;
}

/**
 * A build step's failure with a stable code (`plugin_missing`,
 * `command_failed`, `install_stalled`…): the engine records `code`,
 * `message` and `details` in the image's `status_detail`.
 */
export class StepError extends Error implements BuildError {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'StepError';
  }
}
