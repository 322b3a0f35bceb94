import { createActor, fromCallback, fromPromise, type Snapshot } from 'xstate';
import { MACHINES, type BuildError, type CompensateInput, type StepInput, type TimerInput } from '../../machines/build.machine.js';
import type { BuildKind } from '../../machines/steps.js';

interface Deferred {
  resolve(value?: unknown): void;
  reject(e: unknown): void;
}

/**
 * Runs a build machine with test implementations whose outcome the test
 * decides: steps, undo, parent and timers all wait to be told.
 */
export function harness(kind: BuildKind, opts: { deadline?: number; phaseLimits?: Record<string, number>; snapshot?: Snapshot<unknown> } = {}) {
  const log: string[] = [];
  const pending: Record<string, Deferred | undefined> = {};
  const timers: { input: TimerInput; fire(): void; active: boolean }[] = [];
  const wait = <T = void>(key: string) => new Promise<T>((resolve, reject) => (pending[key] = { resolve: resolve as (v?: unknown) => void, reject }));

  const machine = MACHINES[kind].provide({
    actors: {
      runStep: fromPromise<void | 'cache_hit', StepInput>(({ input, signal }) => {
        log.push(`run:${input.step}`);
        signal.addEventListener('abort', () => log.push(`abort:${input.step}`));
        return wait<void | 'cache_hit'>('step');
      }),
      compensate: fromPromise<void, CompensateInput>(({ input }) => {
        log.push(`compensate:${input.steps.join(',')}`);
        return wait('compensate');
      }),
      awaitParent: fromPromise(() => {
        log.push('await:parent');
        return wait('parent');
      }),
      timer: fromCallback<{ type: string }, TimerInput>(({ input, sendBack }) => {
        const t = { input, active: true, fire: () => sendBack({ type: 'TIMEOUT', scope: input.scope }) };
        timers.push(t);
        return () => {
          t.active = false;
        };
      }),
    },
  });
  const input = { imageId: 'img-1', deadline: opts.deadline ?? Date.now() + 3_600_000, phaseLimits: opts.phaseLimits ?? {}, parentId: kind === 'base' ? null : 'parent-1' };
  const actor = createActor(machine, opts.snapshot ? { snapshot: opts.snapshot, input } : { input });
  actor.start();

  const settle = () => new Promise((r) => setImmediate(r));
  const take = (key: string) => {
    const d = pending[key];
    if (!d) throw new Error(`nothing is waiting on ${key}`);
    pending[key] = undefined;
    return d;
  };
  return {
    actor,
    log,
    timers,
    state: () => actor.getSnapshot().value as string,
    context: () => actor.getSnapshot().context,
    async send(type: 'ADMIT' | 'CANCEL') {
      actor.send({ type });
      await settle();
    },
    async done(key: 'step' | 'compensate' | 'parent') {
      take(key).resolve();
      await settle();
    },
    /** The running step finds its build already made. */
    async hit() {
      take('step').resolve('cache_hit');
      await settle();
    },
    async fail(key: 'step' | 'parent' | 'compensate', error: BuildError | Error) {
      take(key).reject(error);
      await settle();
    },
    async fireTimer() {
      const t = timers.filter((x) => x.active).at(-1);
      if (!t) throw new Error('no active timer');
      t.fire();
      await settle();
    },
  };
}
