import { existsSync } from 'node:fs';
import { MACHINES } from '../../machines/build.machine.js';
import { buildKindOf, type ImageKind, type ImageRecord, type TransitionRecord } from '../model/index.js';
import { VERSION } from '../version.js';
import { Deletion } from './deletion.js';
import type { EngineDeps } from './deps.js';
import { EngineError } from './errors.js';
import { guestRunner } from './guests.js';
import { Recovery } from './recovery.js';
import { Submission } from './submission.js';
import { Supervisor } from './supervisor.js';
import type { BaseImageRequest, DeleteRequest, EngineApi, EngineEvent, MachineView, ProviderImageRequest, SubmitOptions, TargetImageRequest } from './types.js';
import { BuildWork } from './work.js';

/**
 * The engine as its callers see it (EngineApi): submissions, commands and
 * the read side, over the rooms that do the work — the supervisor (actors,
 * admission, transitions), the build work (steps, undo, parents), recovery
 * and deletion. Its collaborators come from the composition root.
 */
export class Engine implements EngineApi {
  readonly version = VERSION;
  private readonly supervisor: Supervisor;
  private readonly submission: Submission;
  private readonly deletion: Deletion;
  private readonly recovery: Recovery;

  private constructor(private readonly deps: EngineDeps) {
    const work = new BuildWork(deps, guestRunner(deps.hypervisor, { storagePath: deps.settings.storagePath, stallSeconds: deps.settings.stallSeconds }));
    this.supervisor = new Supervisor(deps, work.provide, async (id) => void (await work.reapAll(id)));
    work.supervisor = this.supervisor;
    this.submission = new Submission(deps, this.supervisor);
    this.deletion = new Deletion(deps, this.supervisor, work);
    this.recovery = new Recovery(deps, this.supervisor, work, this.deletion.deleteTree);
  }

  /** An engine over the given collaborators, with the unfinished builds of its catalog recovered. */
  static async start(deps: EngineDeps): Promise<Engine> {
    const engine = new Engine(deps);
    await engine.recovery.recoverAll();
    return engine;
  }

  submitBaseImage(req: BaseImageRequest, opts?: SubmitOptions): ImageRecord {
    return this.submission.base(req, opts);
  }

  submitTargetImage(req: TargetImageRequest, opts?: SubmitOptions): ImageRecord {
    return this.submission.target(req, opts);
  }

  submitProviderImage(req: ProviderImageRequest, opts?: SubmitOptions): ImageRecord {
    return this.submission.provider(req, opts);
  }

  cancel(id: string): void {
    const image = this.mustGet(id);
    if (!this.supervisor.cancel(id)) throw new EngineError('conflict', `image ${id} is ${image.status}; only a build in progress can be cancelled`);
  }

  deleteImage(id: string, opts: DeleteRequest = {}): void {
    const image = this.mustGet(id);
    const fromProvider = image.kind === 'ProviderImage' && (opts.provider !== undefined || opts.credentials !== undefined);
    this.deletion.request(image, { cascade: opts.cascade, remote: fromProvider ? this.deletion.remoteOf(image, opts) : null });
  }

  subscribe(listener: (event: EngineEvent) => void): () => void {
    return this.supervisor.subscribe(listener);
  }

  note(id: string, line: string): void {
    this.deps.logs.write(id, line);
  }

  getImage(id: string): ImageRecord | null {
    return this.deps.catalog.getImage(id);
  }

  listImages(filter: { kind?: ImageKind; baseImageId?: string; targetImageId?: string } = {}): ImageRecord[] {
    return this.deps.catalog.listImages(filter);
  }

  transitions(id: string): TransitionRecord[] {
    this.mustGet(id);
    return this.deps.catalog.transitions(id);
  }

  machine(id: string): MachineView {
    const image = this.mustGet(id);
    const visited = [...new Set(this.deps.catalog.transitions(id).map((t) => t.to))];
    return { definition: MACHINES[buildKindOf(image.kind)].toJSON(), value: image.phase, visited };
  }

  logPath(id: string): string | null {
    this.mustGet(id);
    const path = this.deps.logs.pathFor(id);
    return existsSync(path) ? path : null;
  }

  followLog(id: string, onChunk: (text: string) => void): () => void {
    return this.deps.logs.follow(id, onChunk);
  }

  plugins(): Record<string, unknown>[] {
    return this.deps.registry.list().map((p) => ({ ...p.info, id: p.id, ...(p.error ? { error: p.error } : {}) }));
  }

  private mustGet(id: string): ImageRecord {
    const image = this.deps.catalog.getImage(id);
    if (!image) throw new EngineError('image_not_found', `no image with id ${id}`);
    return image;
  }

  async shutdown(): Promise<void> {
    // Stopping an actor aborts its steps; the catalog keeps the state for the next start.
    await this.supervisor.stopAll();
    await this.deps.pool.destroy();
    await this.deps.hypervisor.close();
    this.deps.catalog.close();
    this.deps.storageLock?.release();
  }
}
