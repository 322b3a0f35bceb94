import { StepError } from '../../os/plugin.js';

/**
 * Stable codes of a provider push's failures; the engine records them in `status_detail.error`.
 *
 * - `auth_failed`: the provider refused the credentials (wrong key, signature, password).
 * - `invalid_credentials` / `invalid_provider`: the documents cannot be read or lack a field.
 * - `provider_unreachable`: no answer (refused, dropped, timed out) after every retry.
 * - `throttled`: still throttled after every retry.
 * - `provider_error`: the provider answered with an error we do not retry (or 5xx after every retry).
 * - `timeout`: the push's overall budget ran out.
 * - `cancelled`: the caller's signal aborted.
 * - `not_supported`: the request asks for something this push does not do (EC2 snapshot builds).
 * - `image_failed`: the provider accepted the upload, then failed the image (snapshot `error`, Glance `killed`).
 * - `input_invalid`: the target image cannot be read as what its target says (an OCI archive without index).
 * - `tool_failed`: a host tool (`qemu-img`, `virsh`) failed.
 */
export type ProviderErrorCode =
  | 'auth_failed'
  | 'invalid_credentials'
  | 'invalid_provider'
  | 'provider_unreachable'
  | 'throttled'
  | 'provider_error'
  | 'timeout'
  | 'cancelled'
  | 'not_supported'
  | 'image_failed'
  | 'input_invalid'
  | 'tool_failed';

export class ProviderError extends StepError {
  declare readonly code: ProviderErrorCode;
  constructor(code: ProviderErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, details);
    this.name = 'ProviderError';
  }
}

export const isProviderError = (error: unknown): error is ProviderError => error instanceof ProviderError;

/** The `cancelled` error for an aborted signal (the reason's text is not carried: it could be anything). */
export function cancelledError(what: string): ProviderError {
  return new ProviderError('cancelled', `${what} was cancelled`);
}

/** Throws `cancelled` if `signal` has aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw cancelledError(what);
}
