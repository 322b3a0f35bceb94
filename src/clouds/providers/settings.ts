import type { RetryPolicy } from './retry.js';
import type { PushOptions } from './types.js';

export const DEFAULTS: Required<PushOptions> = {
  parallelRequests: 8,
  requestTimeoutMs: 60_000,
  budgetMs: 3 * 60 * 60 * 1000,
  attempts: 8,
  backoffBaseMs: 200,
  backoffMaxMs: 20_000,
  pollIntervalMs: 1000,
};

/** The options with defaults filled in; nonsense values are refused rather than guessed around. */
export function settingsOf(options: PushOptions | undefined): Required<PushOptions> {
  const out = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options ?? {}).filter(([, v]) => v !== undefined)) };
  for (const [name, value] of Object.entries(out)) {
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`push option ${name} must be a positive number, got ${value}`);
  }
  if (!Number.isInteger(out.parallelRequests) || !Number.isInteger(out.attempts)) throw new RangeError('parallelRequests and attempts must be integers');
  return out;
}

/** The retry policy of one push, its deadline counted from `startedAt`. */
export function retryPolicy(settings: Required<PushOptions>, startedAt = Date.now()): RetryPolicy {
  return {
    attempts: settings.attempts,
    requestTimeoutMs: settings.requestTimeoutMs,
    backoffBaseMs: settings.backoffBaseMs,
    backoffMaxMs: settings.backoffMaxMs,
    deadline: startedAt + settings.budgetMs,
  };
}
