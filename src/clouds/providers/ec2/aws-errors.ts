// What an AWS SDK failure means for the push. The SDK's own retries are off (maxAttempts 1) so that
// one policy — ours, with its per-request timeouts inside the push's budget — decides.
import { ProviderError } from '../errors.js';
import { isNetworkError, type Verdict } from '../retry.js';

const AUTH = new Set([
  'AuthFailure',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'UnrecognizedClientException',
  'IncompleteSignature',
  'InvalidAccessKeyId',
  'ExpiredToken',
  'ExpiredTokenException',
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'OptInRequired',
]);
const THROTTLED = new Set(['Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'RequestThrottledException', 'TooManyRequestsException', 'SlowDown', 'RequestThrottled']);
const SERVER = new Set(['InternalError', 'InternalFailure', 'InternalServerError', 'InternalServerException', 'ServiceUnavailable', 'ServiceUnavailableException', 'Unavailable']);

/** The parts of an SDK error we look at (never its request or response objects). */
export function awsErrorFacts(error: unknown): { name: string; status?: number; message: string } {
  const e = error as { name?: unknown; Code?: unknown; message?: unknown; $metadata?: { httpStatusCode?: unknown } };
  const name = typeof e?.Code === 'string' ? e.Code : typeof e?.name === 'string' ? e.name : 'Error';
  const status = typeof e?.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  const message = typeof e?.message === 'string' ? e.message.split('\n')[0]!.slice(0, 300) : String(error);
  return { name, ...(status !== undefined ? { status } : {}), message };
}

export function classifyAwsFailure(error: unknown, { timedOut }: { timedOut: boolean }): Verdict {
  if (error instanceof ProviderError) return { retry: false, error };
  const { name, status, message } = awsErrorFacts(error);
  const reason = `${name}${status ? ` (HTTP ${status})` : ''}: ${message}`;
  if (AUTH.has(name) || status === 401 || status === 403) {
    return { retry: false, error: new ProviderError('auth_failed', `AWS refused the credentials: ${reason}`, { awsError: name, ...(status ? { status } : {}) }) };
  }
  if (THROTTLED.has(name) || status === 429) return { retry: true, kind: 'throttled', reason };
  if (SERVER.has(name) || (status !== undefined && status >= 500)) return { retry: true, kind: 'server', reason };
  if (timedOut) return { retry: true, kind: 'unreachable', reason: 'no answer within the request timeout' };
  if (status === undefined && isNetworkError(error)) return { retry: true, kind: 'unreachable', reason };
  return { retry: false, error: new ProviderError('provider_error', `AWS answered ${reason}`, { awsError: name, ...(status ? { status } : {}) }) };
}

/** True for "it is already gone" answers, which cleanup and delete take as success. */
export function isNotFound(error: unknown): boolean {
  const { name, status } = awsErrorFacts(error);
  return /NotFound|\.Unavailable$|InvalidAMIID\.|InvalidSnapshot\.|ResourceNotFoundException/.test(name) || status === 404;
}
