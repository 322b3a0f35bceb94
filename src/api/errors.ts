import { randomUUID } from 'node:crypto';
import { EngineError, type EngineErrorCode } from '../engine/errors.js';

/** The HTTP status each engine refusal is answered with. */
export const HTTP_STATUS: Record<EngineErrorCode, number> = {
  template_invalid: 400,
  bad_request: 400,
  bad_parameter: 400,
  // The operator's target content file cannot be read: a fault of the server, not of the request.
  target_content_invalid: 500,
  image_not_found: 404,
  conflict: 409,
  queue_full: 503,
  shutting_down: 503,
  not_supported: 501,
};

/** An HTTP-level refusal with a stable code; answered as `{"error":{code,message,details}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    /** Extra response headers, e.g. `Allow` or `Content-Range`. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export interface ErrorAnswer {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
  /** Set for genuine faults (500): the id that ties the answer to the log line. */
  correlationId?: string;
}

/** Maps anything a handler threw onto the answer the client gets; never leaks a stack. */
export function answerFor(err: unknown): ErrorAnswer {
  if (err instanceof ApiError) {
    return { status: err.status, body: errorBody(err.code, err.message, err.details), headers: { ...err.headers } };
  }
  if (err instanceof EngineError) {
    const status = HTTP_STATUS[err.code] ?? 500;
    return { status, body: errorBody(err.code, err.message, err.details), headers: {} };
  }
  const correlationId = randomUUID();
  return {
    status: 500,
    body: errorBody('internal', `internal error; correlation id ${correlationId}`, { correlation_id: correlationId }),
    headers: { 'x-correlation-id': correlationId },
    correlationId,
  };
}

function errorBody(code: string, message: string, details: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

export const notFound = (path: string) => new ApiError(404, 'not_found', `no route for ${path}`);
export const imageNotFound = (message: string) => new ApiError(404, 'image_not_found', message);
export const badRequest = (message: string, details?: unknown) => new ApiError(400, 'bad_request', message, details);
