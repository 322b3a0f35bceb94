import type { ProviderResource, PushContext, PushProgress } from '../../../src/clouds/providers/types.js';

/** A push context that keeps what the push reported (logs, progress, recorded resources). */
export interface RecordingContext extends PushContext {
  logs: string[];
  progressed: PushProgress[];
  recorded: ProviderResource[];
  /** Called after each progress report (to cancel at a chosen point). */
  onProgress?: (progress: PushProgress) => void;
}

export function makePushContext(fields: Omit<PushContext, 'signal' | 'log' | 'progress' | 'record'> & { signal?: AbortSignal }): RecordingContext {
  const ctx: RecordingContext = {
    signal: new AbortController().signal,
    ...fields,
    logs: [],
    progressed: [],
    recorded: [],
    log: (line) => ctx.logs.push(line),
    progress: (p) => {
      ctx.progressed.push(p);
      ctx.onProgress?.(p);
    },
    record: (r) => ctx.recorded.push(r),
  };
  return ctx;
}

/** The rejection of `promise` (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}
