// HTTP requests of the REST providers, retried by ./retry.ts: which answers are worth another
// attempt (429, 5xx, dropped connections, timeouts) and which end the push (401/403 → auth_failed,
// other 4xx → provider_error).
import { ProviderError } from './errors.js';
import { httpRequest, type HttpRequest, type HttpResponse } from './http.js';
import { AttemptTimeout, isNetworkError, retrying, type RetryPolicy, type Verdict } from './retry.js';

/** An answer with a status the caller did not expect. */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly excerpt: string,
  ) {
    super(`HTTP ${status}${excerpt ? `: ${excerpt}` : ''}`);
    this.name = 'HttpStatusError';
  }
}

/** The start of an error answer, on one line, for messages (the caller scrubs it). */
export function excerptOf(response: HttpResponse): string {
  const json = response.json() as { error?: unknown; errors?: unknown; message?: unknown } | undefined;
  const text = json !== undefined ? JSON.stringify(json.errors ?? json.error ?? json.message ?? json) : response.text();
  return text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
}

export function classifyHttpFailure(error: unknown, { timedOut }: { timedOut: boolean }): Verdict {
  if (error instanceof ProviderError) return { retry: false, error };
  if (error instanceof HttpStatusError) {
    if (error.status === 401 || error.status === 403) {
      return { retry: false, error: new ProviderError('auth_failed', `the provider refused the credentials (${error.message})`, { status: error.status }) };
    }
    if (error.status === 429) return { retry: true, kind: 'throttled', reason: error.message };
    if (error.status >= 500) return { retry: true, kind: 'server', reason: error.message };
    return { retry: false, error: new ProviderError('provider_error', `the provider answered ${error.message}`, { status: error.status }) };
  }
  if (timedOut || error instanceof AttemptTimeout) return { retry: true, kind: 'unreachable', reason: error instanceof Error ? error.message : 'timed out' };
  if (isNetworkError(error)) return { retry: true, kind: 'unreachable', reason: error instanceof Error ? error.message : String(error) };
  return { retry: false, error: new ProviderError('provider_error', error instanceof Error ? error.message : String(error)) };
}

/**
 * Sends `build()`'s request (built anew for each attempt) until it is answered with one of `ok`
 * (then that answer is returned) or the retries end.
 */
export function requestWithRetries(
  what: string,
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
  build: () => Omit<HttpRequest, 'signal'>,
  ok: number[],
  log?: (line: string) => void,
): Promise<HttpResponse> {
  return retrying(
    what,
    policy,
    signal,
    async ({ signal: attemptSignal }) => {
      const response = await httpRequest({ ...build(), signal: attemptSignal });
      if (!ok.includes(response.status)) throw new HttpStatusError(response.status, excerptOf(response));
      return response;
    },
    classifyHttpFailure,
    log ? ({ attempt, delayMs, reason }) => log(`${what}: attempt ${attempt} failed (${reason}); retrying in ${delayMs} ms`) : undefined,
  );
}
