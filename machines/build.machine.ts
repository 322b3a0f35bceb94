import { assign, fromCallback, fromPromise, setup, type ActorRefFrom, type EventObject, type SnapshotFrom } from 'xstate';
import type { BuildError } from '../src/model/errors.js';
import { WAIT_STATE, WORK, type BuildKind } from './steps.js';

/**
 * The build machines: pure definitions. Every effect — running a step,
 * undoing steps, waiting for a parent, timing out — is an actor the engine
 * provides with `machine.provide({ actors })`; here are only placeholders
 * that fail loudly if the engine forgot one.
 */

export type { BuildError } from '../src/model/errors.js';

export interface BuildContext {
  imageId: string;
  kind: BuildKind;
  /** Absolute deadline of the whole build (ms since epoch), counted from submission. */
  deadline: number;
  /** Seconds allowed per working state; a missing state has no limit of its own. */
  phaseLimits: Record<string, number>;
  /** Absolute deadline of the current working state, or null. */
  phaseDeadline: number | null;
  phaseStarted: number | null;
  /** Steps entered so far, in order: what must be undone on failure or cancel. */
  steps: string[];
  parentId: string | null;
  error: BuildError | null;
}

export interface BuildInput {
  imageId: string;
  deadline: number;
  phaseLimits?: Record<string, number>;
  parentId?: string | null;
}

export type BuildEvent =
  | { type: 'ADMIT' }
  | { type: 'CANCEL' }
  | { type: 'TIMEOUT'; scope: 'build' | 'phase' };

export interface StepInput {
  imageId: string;
  step: string;
}
export interface TimerInput {
  at: number;
  scope: 'build' | 'phase';
}
export interface CompensateInput {
  imageId: string;
  /** Steps to undo, most recent first. */
  steps: string[];
}
export interface AwaitParentInput {
  imageId: string;
  parentId: string;
}

/** A step failure as the machine records it: typed when the step threw a typed error. */
export function toBuildError(error: unknown): BuildError {
  if (error && typeof error === 'object' && typeof (error as BuildError).code === 'string' && typeof (error as BuildError).message === 'string') {
    const { code, message, details } = error as BuildError;
    return details === undefined ? { code, message } : { code, message, details };
  }
  return { code: 'internal', message: error instanceof Error ? error.message : String(error) };
}

function timeoutError(context: BuildContext, scope: 'build' | 'phase', phase: string): BuildError {
  if (scope === 'phase' && context.phaseStarted !== null && context.phaseDeadline !== null) {
    const limit = Math.round((context.phaseDeadline - context.phaseStarted) / 100) / 10;
    return { code: 'timeout', message: `the ${phase} phase exceeded its limit of ${limit} s` };
  }
  return { code: 'timeout', message: `the build exceeded its deadline of ${new Date(context.deadline).toISOString()}` };
}

const unimplemented = (name: string) => () => {
  throw new Error(`the engine did not provide the "${name}" actor`);
};

function buildSetup() {
  return setup({
    types: {} as { context: BuildContext; events: BuildEvent; input: BuildInput },
    actors: {
      // Placeholders; the engine provides real ones. Typed as promise/callback logic via provide().
      runStep: unimplementedPromise<StepInput, void | 'cache_hit'>('runStep'),
      compensate: unimplementedPromise<CompensateInput, void>('compensate'),
      awaitParent: unimplementedPromise<AwaitParentInput, void>('awaitParent'),
      timer: unimplementedCallback<TimerInput>('timer'),
    },
  });
}

function unimplementedPromise<I, O>(name: string) {
  return fromPromise<O, I>(async () => unimplemented(name)());
}
function unimplementedCallback<I>(name: string) {
  return fromCallback<EventObject, I>(() => unimplemented(name)());
}

/** Creates the machine of one kind of build; the three share failure, cancel and timeout handling. */
export function createBuildMachine(kind: BuildKind) {
  const work = WORK[kind];
  const wait = WAIT_STATE[kind];
  const b = buildSetup();

  const cancelTransition = { CANCEL: { target: '#build.cancelling' } } as const;
  const states: Record<string, object> = {};

  if (wait) {
    states[wait.state] = {
      meta: { status: 'PENDING', activity: wait.activity },
      invoke: [
        {
          id: 'parent',
          src: 'awaitParent',
          input: ({ context }: { context: BuildContext }) => ({ imageId: context.imageId, parentId: context.parentId! }),
          onDone: { target: 'queued' },
          onError: { target: 'failing', actions: 'recordError' },
        },
        { id: 'timer', src: 'timer', input: ({ context }: { context: BuildContext }) => ({ at: context.deadline, scope: 'build' }) },
      ],
      on: { ...cancelTransition, TIMEOUT: { target: 'failing', actions: 'recordTimeout' } },
    };
  }

  states.queued = {
    meta: { status: wait ? 'PENDING' : 'NEW', activity: 'Queued, waiting for a build slot' },
    invoke: { id: 'timer', src: 'timer', input: ({ context }: { context: BuildContext }) => ({ at: context.deadline, scope: 'build' }) },
    on: { ADMIT: { target: work[0]!.state }, ...cancelTransition, TIMEOUT: { target: 'failing', actions: 'recordTimeout' } },
  };

  work.forEach((w, i) => {
    const next = work[i + 1]?.state ?? 'complete';
    states[w.state] = {
      meta: { status: 'BUILDING', activity: w.activity },
      entry: assign(({ context }: { context: BuildContext }) => {
        const now = Date.now();
        const limit = context.phaseLimits[w.state];
        return { steps: [...context.steps, w.step], phaseStarted: now, phaseDeadline: limit ? now + limit * 1000 : null };
      }),
      invoke: [
        {
          id: 'step',
          src: 'runStep',
          input: ({ context }: { context: BuildContext }) => ({ imageId: context.imageId, step: w.step }),
          // A step that finds its build already made (a cache hit) ends the build at once.
          onDone: [{ guard: 'cacheHit', target: 'complete' }, { target: next }],
          onError: { target: 'failing', actions: 'recordError' },
        },
        {
          id: 'timer',
          src: 'timer',
          input: ({ context }: { context: BuildContext }) =>
            context.phaseDeadline !== null && context.phaseDeadline < context.deadline
              ? { at: context.phaseDeadline, scope: 'phase' }
              : { at: context.deadline, scope: 'build' },
        },
      ],
      on: { ...cancelTransition, TIMEOUT: { target: 'failing', actions: 'recordTimeout' } },
    };
  });

  states.failing = {
    meta: { status: 'BUILDING', activity: 'Build failed; undoing completed steps' },
    invoke: {
      id: 'compensate',
      src: 'compensate',
      input: ({ context }: { context: BuildContext }) => ({ imageId: context.imageId, steps: [...context.steps].reverse() }),
      onDone: { target: 'failed' },
      onError: { target: 'failed', actions: 'recordUndoFailure' },
    },
  };
  states.cancelling = {
    meta: { status: 'BUILDING', activity: 'Cancelling; undoing completed steps' },
    entry: assign({ error: () => ({ code: 'cancelled', message: 'the build was cancelled' }) }),
    invoke: {
      id: 'compensate',
      src: 'compensate',
      input: ({ context }: { context: BuildContext }) => ({ imageId: context.imageId, steps: [...context.steps].reverse() }),
      onDone: { target: 'cancelled' },
      // Something of the build could not be undone: that is a failure, whatever asked for the undo.
      onError: { target: 'failed', actions: 'recordUndoFailure' },
    },
  };
  states.complete = { type: 'final', meta: { status: 'COMPLETE', activity: 'Build complete' } };
  states.failed = { type: 'final', meta: { status: 'FAILED', activity: `${kindLabel(kind)} build failed` } };
  states.cancelled = { type: 'final', meta: { status: 'CANCELLED', activity: 'Build cancelled' } };

  return b
    .extend({
      guards: {
        cacheHit: ({ event }) => (event as unknown as { output?: unknown }).output === 'cache_hit',
      },
      actions: {
        recordError: assign({ error: ({ event }) => toBuildError((event as unknown as { error: unknown }).error) }),
        recordUndoFailure: assign({
          error: ({ context, event }) => {
            const undo = toBuildError((event as unknown as { error: unknown }).error);
            return { ...undo, details: { ...undo.details, ...(context.error ? { cause: context.error } : {}) } };
          },
        }),
        recordTimeout: assign({
          error: ({ context, event, self }) => {
            const scope = (event as { scope?: 'build' | 'phase' }).scope ?? 'build';
            const phase = String(self.getSnapshot().value);
            return timeoutError(context, scope, phase);
          },
        }),
      },
    })
    .createMachine({
      id: 'build',
      context: ({ input }) => ({
        imageId: input.imageId,
        kind,
        deadline: input.deadline,
        phaseLimits: input.phaseLimits ?? {},
        phaseDeadline: null,
        phaseStarted: null,
        steps: [],
        parentId: input.parentId ?? null,
        error: null,
      }),
      initial: wait ? wait.state : 'queued',
      states: states as never,
    });
}

function kindLabel(kind: BuildKind): string {
  return { base: 'Base', target: 'Target', provider: 'Provider' }[kind] + ' image';
}

export const baseImageMachine = createBuildMachine('base');
export const targetImageMachine = createBuildMachine('target');
export const providerImageMachine = createBuildMachine('provider');

export type BuildMachine = typeof baseImageMachine;
export type BuildActor = ActorRefFrom<BuildMachine>;
export type BuildSnapshot = SnapshotFrom<BuildMachine>;

export const MACHINES: Record<BuildKind, BuildMachine> = { base: baseImageMachine, target: targetImageMachine, provider: providerImageMachine };

export const FINAL_STATES = ['complete', 'failed', 'cancelled'] as const;
