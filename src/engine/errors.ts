/** Errors the engine raises to its callers (REST, CLI), each with a stable code; the API layer maps the codes onto its answers. */
export type EngineErrorCode =
  | 'template_invalid'
  | 'bad_request'
  | 'bad_parameter'
  | 'target_content_invalid'
  | 'image_not_found'
  | 'conflict'
  | 'queue_full'
  | 'shutting_down'
  | 'not_supported';

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

export { StepError } from '../model/errors.js';
