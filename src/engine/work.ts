import { fromCallback, fromPromise, type EventObject } from 'xstate';
import type { AwaitParentInput, BuildMachine, CompensateInput, StepInput, TimerInput } from '../../machines/build.machine.js';
import { isFinalStatus, StepError } from '../model/index.js';
import type { Build } from './build.js';
import type { EngineDeps } from './deps.js';
import type { GuestRunner } from './guests.js';
import { reapBuild } from './reaper.js';
import { stepEnv } from './step-env.js';
import { stepNamed, type StepOutcome } from './steps/index.js';
import type { Supervisor } from './supervisor.js';

/**
 * The work behind the machines' actors: running a step, undoing steps,
 * waiting for a parent image, and the deadline timer.
 */
export class BuildWork {
  supervisor!: Supervisor;

  constructor(
    private readonly deps: EngineDeps,
    private readonly guests: GuestRunner,
  ) {}

  provide = (machine: BuildMachine): BuildMachine =>
    machine.provide({
      actors: {
        runStep: fromPromise<void | StepOutcome, StepInput>(({ input, signal }) => this.track(input.imageId, this.runStep(input.imageId, input.step, signal))),
        compensate: fromPromise<void, CompensateInput>(({ input }) => this.compensate(input.imageId, input.steps)),
        awaitParent: fromPromise<void, AwaitParentInput>(({ input, signal }) => this.awaitParent(input.imageId, input.parentId, signal)),
        timer: fromCallback<EventObject, TimerInput>(({ input, sendBack }) => {
          // Long deadlines are re-armed in steps: setTimeout cannot wait more than ~24 days.
          let handle: NodeJS.Timeout;
          const arm = () => {
            const left = input.at - Date.now();
            if (left <= 0) return sendBack({ type: 'TIMEOUT', scope: input.scope } as EventObject);
            handle = setTimeout(arm, Math.min(left, 2 ** 31 - 1));
          };
          arm();
          return () => clearTimeout(handle);
        }),
      },
    }) as BuildMachine;

  envOf(build: Build, stepName: string) {
    const step = stepNamed(stepName);
    if (!step) throw new StepError('internal', `no step named ${stepName}`);
    return { step, env: stepEnv(build, step, { deps: this.deps, guests: this.guests, published: (image) => this.supervisor.publish({ type: 'progress', image }) }) };
  }

  private track<T>(id: string, work: Promise<T>): Promise<T> {
    const build = this.supervisor.builds.get(id);
    if (build) build.inflight = work.catch(() => undefined);
    return work;
  }

  private async runStep(id: string, name: string, signal: AbortSignal): Promise<void | StepOutcome> {
    const build = this.supervisor.builds.get(id);
    if (!build) throw new StepError('internal', `build ${id} is not running`);
    const { step, env } = this.envOf(build, name);
    env.log(`step ${name}: start`);
    const started = Date.now();
    try {
      const outcome = await step.run(env, signal);
      env.log(`step ${name}: ${outcome ?? 'done'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return outcome;
    } catch (e) {
      env.log(`step ${name}: ${signal.aborted ? 'aborted' : `failed: ${(e as Error).message}`}`);
      throw e;
    }
  }

  /**
   * Undoes the given steps (most recent first) after the running step has
   * let go, then reaps whatever of the build is left (guests, processes,
   * temp paths). Every undo runs even when one fails; any failure, or
   * anything that could not be removed, rejects with `undo_failed` naming
   * what is left and where, which fails the build.
   */
  private async compensate(id: string, steps: string[]): Promise<void> {
    const build = this.supervisor.builds.get(id);
    await build?.inflight;
    const log = (line: string) => this.deps.logs.write(id, line);
    const failures: string[] = [];
    if (build) {
      for (const name of steps) {
        try {
          const { step, env } = this.envOf(build, name);
          await step.undo(env);
          log(`undo ${name}: done`);
        } catch (e) {
          failures.push(`undo ${name}: ${(e as Error).message}`);
          log(`undo ${name}: failed: ${(e as Error).message}`);
        }
      }
    }
    const { reaped, left } = await this.reapAll(id);
    if (reaped.length) log(`reaped ${reaped.join(', ')}`);
    if (build?.ownedParent) this.supervisor.cancel(build.ownedParent);
    if (failures.length || left.length) {
      throw new StepError('undo_failed', `undoing the build failed; left behind: ${[...failures, ...left].join('; ')}`, { failures, left });
    }
  }

  /** Destroys the build's guests, kills its processes and removes its temp paths; says what went and what could not be removed. */
  async reapAll(id: string, opts: { keepWorkdir?: boolean } = {}): Promise<{ reaped: string[]; left: string[] }> {
    const guests = await this.guests.reap(id);
    const { reaped, left } = await reapBuild(id, this.deps.settings.workRoot, opts);
    return { reaped: [...guests, ...reaped], left };
  }

  private awaitParent(id: string, parentId: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const parent = this.deps.catalog.getImage(parentId);
        if (!parent) {
          reject(new StepError('parent_missing', `the parent image ${parentId} no longer exists`));
          return true;
        }
        if (parent.status === 'COMPLETE') {
          resolve();
          return true;
        }
        if (isFinalStatus(parent.status) || parent.status === 'DELETING') {
          const why = parent.error ? `${parent.error.code}: ${parent.error.message}` : parent.status;
          reject(new StepError('parent_failed', `${parent.kind} ${parentId} ended ${parent.status} (${why})`, { parentId }));
          return true;
        }
        return false;
      };
      if (check()) return;
      const unsubscribe = this.supervisor.subscribe((e) => {
        if (e.image.id === parentId && check()) unsubscribe();
      });
      signal.addEventListener('abort', () => {
        unsubscribe();
        // A shutdown stops every build where it is: the parent is not cancelled then, it resumes at the next start.
        if (!this.supervisor.closing && this.supervisor.builds.get(id)?.ownedParent === parentId) this.supervisor.cancel(parentId);
        reject(new StepError('cancelled', 'stopped waiting for the parent image'));
      });
    });
  }
}
