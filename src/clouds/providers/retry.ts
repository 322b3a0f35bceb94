// One request, retried: each attempt has its own timeout, cut short by the overall deadline; between
// attempts a backoff with full jitter (a random wait between 0 and base·2^n, capped), so that
// parallel requests throttled together do not come back together. The caller's classification
// says what is worth another attempt; what is not fails at once.
import { cancelledError, ProviderError } from './errors.js';

export interface RetryPolicy {
  /** Attempts in all (1 = no retry). */
  attempts: number;
  requestTimeoutMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Absolute time (`Date.now()` scale) after which no attempt starts and a running one is stopped. */
  deadline: number;
}

/** How a failed attempt is to be treated: another attempt, or the final error. */
export type Verdict =
  | { retry: true; kind: 'throttled' | 'server' | 'unreachable'; reason: string }
  | { retry: false; error: ProviderError };

export interface AttemptInfo {
  /** 1 for the first attempt. */
  attempt: number;
  /** Aborts when the caller's signal aborts, the attempt's timeout passes or the deadline comes. */
  signal: AbortSignal;
}

export class AttemptTimeout extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'AttemptTimeout';
  }
}

/**
 * Runs `attempt` until it succeeds, `classify` says not to retry, the attempts run out (then the
 * last retryable failure becomes `throttled`, `provider_error` or `provider_unreachable`), the
 * deadline passes (`timeout`) or `signal` aborts (`cancelled`).
 */
export async function retrying<T>(
  what: string,
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
  attempt: (info: AttemptInfo) => Promise<T>,
  classify: (error: unknown, info: { timedOut: boolean }) => Verdict,
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void,
): Promise<T> {
  let last: Extract<Verdict, { retry: true }> | undefined;
  for (let n = 1; n <= policy.attempts; n++) {
    if (signal?.aborted) throw cancelledError(what);
    const left = policy.deadline - Date.now();
    if (left <= 0) throw new ProviderError('timeout', `${what}: the push's time budget ran out${last ? ` (last failure: ${last.reason})` : ''}`);
    const limitMs = Math.min(policy.requestTimeoutMs, left);
    const timer = new AbortController();
    const timeout = setTimeout(() => timer.abort(new AttemptTimeout(limitMs)), limitMs);
    const attemptSignal = signal ? AbortSignal.any([signal, timer.signal]) : timer.signal;
    try {
      return await attempt({ attempt: n, signal: attemptSignal });
    } catch (error) {
      if (signal?.aborted) throw cancelledError(what);
      const verdict = classify(error, { timedOut: timer.signal.aborted });
      if (!verdict.retry) throw verdict.error;
      last = verdict;
      if (n === policy.attempts) break;
      const delayMs = Math.min(backoff(policy, n), Math.max(0, policy.deadline - Date.now()));
      onRetry?.({ attempt: n, delayMs, reason: verdict.reason });
      await sleep(delayMs, signal, what);
    } finally {
      clearTimeout(timeout);
    }
  }
  const reason = last ? last.reason : 'no attempt was made';
  const code = last?.kind === 'throttled' ? 'throttled' : last?.kind === 'server' ? 'provider_error' : 'provider_unreachable';
  throw new ProviderError(code, `${what} failed after ${policy.attempts} attempts: ${reason}`, { attempts: policy.attempts });
}

/** Full jitter: uniform in [0, min(max, base·2^(n-1))]. */
export function backoff(policy: Pick<RetryPolicy, 'backoffBaseMs' | 'backoffMaxMs'>, n: number): number {
  const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** (n - 1));
  return Math.round(Math.random() * ceiling);
}

/** Waits `ms`, or rejects `cancelled` as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelledError(what));
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelledError(what));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Network failures worth another attempt (the connection, not the answer, failed). */
export function isNetworkError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|ENOTFOUND|UND_ERR_\w+)$/.test(code)) return true;
  return /socket hang up|ECONNRESET|ECONNREFUSED|EPIPE|network|premature close|aborted|TimeoutError|timed? ?out/i.test(`${error.name} ${error.message}`);
}
