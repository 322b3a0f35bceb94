import type { EngineApi } from '../engine/types.js';
import type { ImageRecord } from '../model/index.js';

/**
 * What happens to running builds when the daemon is asked to stop
 * (`shutdown` in the configuration), through the engine's public API only:
 *
 * - `checkpoint`: nothing here; `engine.shutdown()` stops every build where it
 *   is (its step aborted, its guest destroyed) and keeps its state, so the
 *   next start resumes it.
 * - `cancel`: each unfinished build is cancelled (its steps undone) and
 *   awaited until it is final, within the time limit; whatever is not final
 *   by then is left to `engine.shutdown()`, i.e. checkpointed.
 */

export type ShutdownPolicy = 'checkpoint' | 'cancel';

export interface StopReport {
  /** Builds that were unfinished when the stop began. */
  unfinished: { id: string; kind: string; phase: string }[];
  /** Of those, the ones that ended final (cancelled, or finished meanwhile), with their status. */
  final: { id: string; status: string }[];
  /** Whether waiting for them hit the time limit. */
  timedOut: boolean;
}

const UNFINISHED = new Set(['NEW', 'PENDING', 'BUILDING']);
const FINAL = new Set(['COMPLETE', 'FAILED', 'CANCELLED', 'DELETED', 'DELETEFAILED']);

export function unfinishedBuilds(engine: EngineApi): ImageRecord[] {
  return engine.listImages().filter((i) => UNFINISHED.has(i.status));
}

/** Applies the policy to the unfinished builds; resolves once they are final, or at the time limit. Never throws. */
export async function stopBuilds(engine: EngineApi, policy: ShutdownPolicy, timeoutMs: number, log: (fields: object, msg: string) => void): Promise<StopReport> {
  const running = unfinishedBuilds(engine);
  const unfinished = running.map((i) => ({ id: i.id, kind: i.kind, phase: i.phase }));
  if (policy === 'checkpoint' || running.length === 0) return { unfinished, final: [], timedOut: false };

  const waiting = new Set(running.map((i) => i.id));
  const final: StopReport['final'] = [];
  let settle: () => void = () => undefined;
  const allFinal = new Promise<void>((resolve) => (settle = resolve));
  const check = (id: string) => {
    const image = engine.getImage(id);
    if (image && !FINAL.has(image.status)) return;
    waiting.delete(id);
    final.push({ id, status: image?.status ?? 'DELETED' });
    if (waiting.size === 0) settle();
  };
  const unsubscribe = engine.subscribe((event) => {
    if (waiting.has(event.image.id) && FINAL.has(event.image.status)) check(event.image.id);
  });
  for (const image of running) {
    try {
      engine.cancel(image.id);
      log({ imageId: image.id, phase: image.phase }, 'shutdown: cancelling the build');
    } catch (e) {
      // A parent cancelled with its child, or a build that ended meanwhile.
      log({ imageId: image.id, reason: (e as Error).message }, 'shutdown: build not cancelled');
    }
  }
  for (const id of [...waiting]) check(id);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    allFinal.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  unsubscribe();
  return { unfinished, final, timedOut };
}
