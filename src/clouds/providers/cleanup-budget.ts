import { ProviderError } from './errors.js';
import type { RetryPolicy } from './retry.js';
import type { ProviderResource } from './types.js';

/** Cleanup after a failure or cancel gets its own time, whatever is left of the push's. */
export const CLEANUP_BUDGET_MS = 120_000;

export function cleanupPolicy(policy: RetryPolicy): RetryPolicy {
  return { ...policy, deadline: Date.now() + CLEANUP_BUDGET_MS };
}

/**
 * Runs the cleanup of what a failed push made; a cleanup that fails too is logged and listed in
 * the returned leftovers (for the error's details), never thrown over the push's own error.
 */
export async function cleanupAfterFailure(
  made: ProviderResource[],
  remove: (resources: ProviderResource[], signal: AbortSignal) => Promise<void>,
  log: (line: string) => void,
  scrub: (text: string) => string,
): Promise<ProviderResource[]> {
  if (made.length === 0) return [];
  log(`removing what the push made: ${made.map((r) => `${r.kind} ${r.id}`).join(', ')}`);
  try {
    await remove([...made], AbortSignal.timeout(CLEANUP_BUDGET_MS));
    return [];
  } catch (error) {
    log(`cleanup failed, left on the provider: ${made.map((r) => `${r.kind} ${r.id}`).join(', ')} (${scrub(error instanceof Error ? error.message : String(error))})`);
    return made;
  }
}

/** The error with the resources a failed cleanup left in its details (`left_on_provider`). */
export function withLeftovers(error: ProviderError, left: ProviderResource[]): ProviderError {
  if (left.length === 0) return error;
  return new ProviderError(error.code, error.message, { ...error.details, left_on_provider: left });
}
