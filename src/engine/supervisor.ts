import { createActor, type InspectionEvent } from 'xstate';
import { FINAL_STATES, MACHINES, type BuildContext, type BuildInput, type BuildMachine } from '../../machines/build.machine.js';
import { removeTreeSync } from '../fs/remove-tree.js';
import { buildKindOf, type BuildKind, type ImageRecord, type ImageStatus } from '../model/index.js';
import type { Template } from '../tdl/index.js';
import type { Build } from './build.js';
import type { EngineDeps } from './deps.js';
import { workdirFor } from './reaper.js';
import { stepOfState } from './steps/index.js';
import type { EngineEvent } from './types.js';

/** Gives a machine the engine's implementations of its actors (src/engine/work.ts). */
export type ProvideActors = (machine: BuildMachine) => BuildMachine;

export interface StartOptions {
  input: BuildInput;
  /** A persisted machine snapshot to restore (recovery), else the machine starts fresh. */
  snapshot?: unknown;
  ownedParent?: string | null;
  credentials?: string | null;
  template?: Template | null;
}

const isFinalState = (value: string) => (FINAL_STATES as readonly string[]).includes(value);

/** The status and activity a machine state stands for (its `meta`). */
export function stateMeta(kind: BuildKind, value: string): { status: ImageStatus; activity: string } {
  const node = (MACHINES[kind].config.states as Record<string, { meta?: { status: ImageStatus; activity: string } }>)[value];
  return node?.meta ?? { status: 'BUILDING', activity: value };
}

/**
 * The root actor: runs each build as its machine, admits builds within the
 * configured concurrency, and records every transition in the catalog
 * before telling anyone. A transition that cannot be recorded (a full
 * disk) fails that build with `storage_full`, never the daemon.
 */
export class Supervisor {
  readonly builds = new Map<string, Build>();
  private readonly queue: string[] = [];
  private readonly listeners = new Set<(e: EngineEvent) => void>();
  closing = false;

  constructor(
    private readonly deps: EngineDeps,
    private readonly provide: ProvideActors,
    /** Kills, destroys and removes whatever a build left when it was stopped without its undo. */
    private readonly reap: (id: string) => Promise<void>,
  ) {
    deps.logs.onWriteError = (id, e) => this.failForStorage(id, e);
  }

  start(image: ImageRecord, opts: StartOptions): Build {
    const kind = buildKindOf(image.kind);
    const build: Build = {
      id: image.id,
      kind,
      actor: undefined as unknown as Build['actor'],
      lastValue: opts.snapshot ? String((opts.snapshot as { value: string }).value) : null,
      inflight: null,
      admitted: false,
      ownedParent: opts.ownedParent ?? null,
      credentials: opts.credentials ?? null,
      template: opts.template ?? null,
      osPlugin: null,
    };
    this.builds.set(image.id, build);
    build.actor = createActor(this.provide(MACHINES[kind]), {
      input: opts.input,
      ...(opts.snapshot ? { snapshot: opts.snapshot as never } : {}),
      inspect: (ev: InspectionEvent) => {
        this.onInspection(build, ev);
        try {
          this.deps.inspect?.(ev, build.id);
        } catch (e) {
          this.deps.log(`inspect relay failed: ${(e as Error).message}`);
        }
      },
    });
    build.actor.start();
    return build;
  }

  /** Marks a restored build as holding a slot already, or waiting for one. */
  restored(build: Build, value: string): void {
    if (value === 'queued') this.queue.push(build.id);
    else if (!value.startsWith('waiting_for')) build.admitted = true;
  }

  private onInspection(build: Build, ev: InspectionEvent): void {
    if (ev.type !== '@xstate.snapshot' || ev.actorRef !== build.actor || !this.builds.has(build.id)) return;
    const snapshot = ev.snapshot as unknown as { value: string; context: BuildContext };
    const value = String(snapshot.value);
    if (value === build.lastValue) return;
    const from = build.lastValue;
    build.lastValue = value;
    const meta = stateMeta(build.kind, value);
    // A build is only reported final once nothing of it is left behind.
    if (isFinalState(value)) this.finish(build);
    const patch: Partial<ImageRecord> = { status: meta.status, activity: meta.activity, error: snapshot.context.error };
    const range = stepOfState(build.kind, value)?.step.progress;
    if (range) patch.percentComplete = range[0];
    if (value === 'complete') patch.percentComplete = 100;
    let image: ImageRecord;
    let transition;
    try {
      const event = (ev.event as { output?: unknown }).output === 'cache_hit' ? 'cache_hit' : ev.event.type;
      transition = this.deps.catalog.recordTransition({ imageId: build.id, from, to: value, event }, patch, build.actor.getPersistedSnapshot());
      image = this.deps.catalog.getImage(build.id)!;
    } catch (e) {
      return this.failForStorage(build.id, e as Error);
    }
    const why = image.error && (value === 'failing' || value === 'cancelling') ? `: ${image.error.code}: ${image.error.message}` : '';
    this.deps.logs.write(build.id, `state ${from ?? '(start)'} -> ${value} on ${transition.event}${why}`);
    this.publish({ type: 'transition', image, transition });
    queueMicrotask(() => this.afterTransition(build, value));
  }

  private afterTransition(build: Build, value: string): void {
    if (value === 'queued' && !build.admitted && this.builds.has(build.id) && !this.queue.includes(build.id)) this.queue.push(build.id);
    if (isFinalState(value)) build.actor.stop();
    this.pump();
  }

  /** Runs synchronously inside the final transition, before it is published. */
  private finish(build: Build): void {
    this.forget(build);
    // Failure paths removed it in their compensation already; a complete build's scratch space goes now.
    try {
      removeTreeSync(workdirFor(this.deps.settings.workRoot, build.id));
    } catch (e) {
      this.deps.logs.write(build.id, `cleanup: ${(e as Error).message}`);
    }
  }

  private forget(build: Build): void {
    this.builds.delete(build.id);
    const i = this.queue.indexOf(build.id);
    if (i !== -1) this.queue.splice(i, 1);
    build.credentials = null;
  }

  /**
   * The catalog or the build log could not be written (disk full, database
   * full or locked): the build stops where it is, its processes and guests
   * are aborted with its steps, and it is marked FAILED `storage_full` if
   * the catalog can still take that much.
   */
  failForStorage(id: string, error: Error): void {
    const build = this.builds.get(id);
    if (!build) return;
    this.deps.log(`build ${id}: storage failed (${error.message}); failing the build`);
    this.forget(build);
    build.actor.stop();
    const fault = { code: 'storage_full', message: `the build could not record its progress: ${error.message}` };
    let image: ImageRecord | null = null;
    try {
      image = this.deps.catalog.updateImage(id, { status: 'FAILED', phase: 'failed', activity: stateMeta(build.kind, 'failed').activity, error: fault });
    } catch (e) {
      this.deps.log(`build ${id}: could not record storage_full either: ${(e as Error).message}`);
    }
    if (image) this.publish({ type: 'progress', image });
    void this.reap(id).catch((e: Error) => this.deps.log(`build ${id}: reaping after the storage fault failed: ${e.message}`));
    this.pump();
  }

  /** Admits queued builds while slots are free. */
  pump(): void {
    if (this.closing) return;
    for (const id of [...this.queue]) {
      const build = this.builds.get(id);
      if (!build) continue;
      const provider = build.kind === 'provider';
      const running = [...this.builds.values()].filter((b) => b.admitted && (b.kind === 'provider') === provider).length;
      const limit = provider ? this.deps.settings.maxConcurrentProvider : this.deps.settings.maxConcurrentLocal;
      if (running >= Math.max(1, limit)) continue;
      this.queue.splice(this.queue.indexOf(id), 1);
      build.admitted = true;
      build.actor.send({ type: 'ADMIT' });
    }
  }

  waiting(): number {
    return [...this.builds.values()].filter((b) => !b.admitted).length;
  }

  cancel(id: string): boolean {
    const build = this.builds.get(id);
    build?.actor.send({ type: 'CANCEL' });
    return build !== undefined;
  }

  subscribe(listener: (event: EngineEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(event: EngineEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (e) {
        this.deps.log(`event listener failed: ${(e as Error).message}`);
      }
    }
  }

  /** Stops every build where it is; the catalog keeps each one's state for the next start. */
  async stopAll(): Promise<void> {
    this.closing = true;
    const running = [...this.builds.values()];
    for (const b of running) b.actor.stop();
    await Promise.all(running.map((b) => b.inflight));
    this.builds.clear();
  }
}
