/** Errors the engine raises to its callers (REST, CLI); each code maps to one HTTP status. */
export type EngineErrorCode =
  | 'template_invalid'
  | 'bad_request'
  | 'image_not_found'
  | 'conflict'
  | 'queue_full'
  | 'shutting_down';

export const HTTP_STATUS: Record<EngineErrorCode, number> = {
  template_invalid: 400,
  bad_request: 400,
  image_not_found: 404,
  conflict: 409,
  queue_full: 503,
  shutting_down: 503,
};

export class EngineError extends Error {
  constructor(
    readonly code: EngineErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

/** A build step's failure with a stable code; defined with the plugin interface, which plugins implement. */
export { StepError } from '../os/plugin.js';
