import { randomUUID } from 'node:crypto';
import { newImageRecord } from '../../src/model/index.js';
import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineError } from '../../src/engine/errors.js';
import type { BaseImageRequest, EngineApi, EngineEvent, MachineView, ProviderImageRequest, SubmitOptions, TargetImageRequest } from '../../src/engine/types.js';
import { FINAL_STATUSES, type ImageKind, type ImageRecord, type ImageStatus, type TransitionRecord } from '../../src/model/index.js';

type Method = Exclude<keyof EngineApi, 'version'>;

/**
 * An in-memory EngineApi for testing the HTTP layer: it keeps records,
 * transitions, logs and bodies, publishes events the way the engine does
 * (after "committing"), and lets a test drive builds and inject faults.
 */
export class FakeEngine implements EngineApi {
  readonly version = '0.0.0-test';
  readonly dir = mkdtempSync(join(tmpdir(), 'if-api-'));
  readonly images = new Map<string, ImageRecord>();
  readonly history = new Map<string, TransitionRecord[]>();
  readonly calls: { method: Method; args: unknown[] }[] = [];
  private readonly listeners = new Set<(e: EngineEvent) => void>();
  private readonly followers = new Map<string, Set<(text: string) => void>>();
  private readonly faults = new Map<Method, () => unknown>();
  pluginList: Record<string, unknown>[] = [
    { id: 'debian', type: 'os', targets: [['Debian', '12', 'x86_64']], description: 'Debian by bootstrap', version: '1.0', license: 'Apache-2.0', maintainer: { name: 'x' } },
    { id: 'ec2', type: 'cloud', targets: [['ec2']], description: 'Amazon EC2', version: '1.0', license: 'Apache-2.0' },
    { id: 'broken', error: 'could not load: missing module' },
  ];

  // ---- test controls --------------------------------------------------------

  /** The next calls of `method` throw (an Error by default; pass a factory for EngineErrors). */
  failOn(method: Method, fault: () => unknown = () => new Error('boom: the fake engine failed')): void {
    this.faults.set(method, fault);
  }

  heal(method: Method): void {
    this.faults.delete(method);
  }

  listenerCount(): number {
    return this.listeners.size;
  }

  followerCount(id: string): number {
    return this.followers.get(id)?.size ?? 0;
  }

  /** Inserts a record as the store would hold it. */
  addImage(kind: ImageKind, fields: Partial<ImageRecord> = {}): ImageRecord {
    const now = new Date().toISOString();
    const image = newImageRecord(randomUUID(), kind, new Date(), { phase: 'queued', ...fields });
    this.images.set(image.id, image);
    this.history.set(image.id, []);
    return image;
  }

  /** Moves an image's machine to `to`, records and publishes the transition. */
  transition(id: string, to: string, opts: { status?: ImageStatus; event?: string; percent?: number; activity?: string } = {}): ImageRecord {
    const image = this.mustGet(id);
    const list = this.history.get(id)!;
    const transition: TransitionRecord = { imageId: id, seq: list.length + 1, from: list.length ? image.phase : null, to, event: opts.event ?? `GO_${to.toUpperCase()}`, at: new Date().toISOString() };
    list.push(transition);
    const updated: ImageRecord = {
      ...image,
      phase: to,
      status: opts.status ?? image.status,
      percentComplete: opts.percent ?? image.percentComplete,
      activity: opts.activity ?? image.activity,
      updated: new Date().toISOString(),
    };
    this.images.set(id, updated);
    this.publish({ type: 'transition', image: updated, transition });
    return updated;
  }

  progress(id: string, percent: number): ImageRecord {
    const updated = { ...this.mustGet(id), percentComplete: percent, updated: new Date().toISOString() };
    this.images.set(id, updated);
    this.publish({ type: 'progress', image: updated });
    return updated;
  }

  /** Appends to the build log, then tells followers (as the engine's BuildLogs does). */
  appendLog(id: string, text: string): void {
    appendFileSync(join(this.dir, `${id}.log`), text);
    for (const f of this.followers.get(id) ?? []) f(text);
  }

  /** Gives an image a body file. */
  setBody(id: string, content: Buffer | string): string {
    const path = join(this.dir, `${id}.body`);
    writeFileSync(path, content);
    this.images.set(id, { ...this.mustGet(id), bodyPath: path });
    return path;
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  // ---- EngineApi ------------------------------------------------------------

  submitBaseImage(req: BaseImageRequest, opts: SubmitOptions = {}): ImageRecord {
    this.enter('submitBaseImage', req, opts);
    const failed = this.failedAtOnce('BaseImage', req.template, opts, { parameters: req.parameters ?? {} });
    if (failed) return failed;
    const image = this.addImage('BaseImage', { template: req.template, parameters: req.parameters ?? {} });
    return this.transition(image.id, 'queued', { status: 'NEW', event: 'SUBMIT' });
  }

  submitTargetImage(req: TargetImageRequest, opts: SubmitOptions = {}): ImageRecord {
    this.enter('submitTargetImage', req, opts);
    if (req.template !== undefined) {
      const failed = this.failedAtOnce('TargetImage', req.template, opts, { target: req.target, parameters: req.parameters ?? {} });
      if (failed) return failed;
    }
    let baseImageId = req.baseImageId;
    if (baseImageId !== undefined) {
      const base = this.images.get(baseImageId);
      if (!base || base.kind !== 'BaseImage') throw new EngineError('image_not_found', `no base image with id ${baseImageId}`);
    } else {
      this.checkTemplate(req.template ?? '');
      baseImageId = this.addImage('BaseImage', { template: req.template ?? null, parameters: req.parameters ?? {} }).id;
    }
    const base = this.mustGet(baseImageId);
    const image = this.addImage('TargetImage', { template: base.template, baseImageId, target: req.target, parameters: req.parameters ?? {}, status: 'PENDING' });
    return this.transition(image.id, 'waiting_for_base', { event: 'SUBMIT' });
  }

  submitProviderImage(req: ProviderImageRequest, opts: SubmitOptions = {}): ImageRecord {
    this.enter('submitProviderImage', req, opts);
    if (req.template !== undefined) {
      const failed = this.failedAtOnce('ProviderImage', req.template, opts, { target: req.target, provider: req.provider, parameters: req.parameters ?? {} });
      if (failed) return failed;
    }
    let targetImageId = req.targetImageId;
    if (targetImageId !== undefined) {
      const target = this.images.get(targetImageId);
      if (!target || target.kind !== 'TargetImage') throw new EngineError('image_not_found', `no target image with id ${targetImageId}`);
    } else {
      targetImageId = this.submitTargetImage({ target: req.target, template: req.template ?? '' }).id;
    }
    const target = this.mustGet(targetImageId);
    const image = this.addImage('ProviderImage', {
      template: target.template,
      targetImageId,
      target: req.target,
      provider: req.provider,
      parameters: req.parameters ?? {},
      status: 'PENDING',
    });
    return this.transition(image.id, 'waiting_for_target', { event: 'SUBMIT' });
  }

  getImage(id: string): ImageRecord | null {
    this.enter('getImage', id);
    return this.images.get(id) ?? null;
  }

  listImages(filter: { kind?: ImageKind; baseImageId?: string; targetImageId?: string } = {}): ImageRecord[] {
    this.enter('listImages', filter);
    return [...this.images.values()].filter(
      (i) =>
        (!filter.kind || i.kind === filter.kind) &&
        (!filter.baseImageId || i.baseImageId === filter.baseImageId) &&
        (!filter.targetImageId || i.targetImageId === filter.targetImageId),
    );
  }

  transitions(id: string): TransitionRecord[] {
    this.enter('transitions', id);
    this.mustGet(id);
    return [...this.history.get(id)!];
  }

  machine(id: string): MachineView {
    this.enter('machine', id);
    const image = this.mustGet(id);
    return {
      definition: { id: 'build', initial: 'queued', states: { queued: { on: { START: 'validating' } }, validating: {}, complete: { type: 'final' } } },
      value: image.phase,
      visited: [...new Set(this.history.get(id)!.map((t) => t.to))],
    };
  }

  cancel(id: string): void {
    this.enter('cancel', id);
    const image = this.mustGet(id);
    if (FINAL_STATUSES.includes(image.status)) throw new EngineError('conflict', `image ${id} is ${image.status}; only a build in progress can be cancelled`);
    this.transition(id, 'cancelling', { event: 'CANCEL' });
  }

  deleteImage(id: string, opts: { cascade?: boolean; provider?: string; credentials?: string; target?: string } = {}): void {
    this.enter('deleteImage', id, opts);
    this.mustGet(id);
    const children = [...this.images.values()].filter((i) => i.baseImageId === id || i.targetImageId === id);
    if (children.length && !opts.cascade) throw new EngineError('conflict', `image ${id} has ${children.length} child image(s)`, { children: children.map((c) => c.id) });
    // Asynchronous in the real engine; immediate here.
    for (const child of children) this.deleteImage(child.id, { cascade: true });
    const image = this.mustGet(id);
    this.images.delete(id);
    this.publish({ type: 'deleted', image: { ...image, status: 'DELETED', phase: 'deleted' } });
  }

  note(id: string, line: string): void {
    this.enter('note', id, line);
  }

  logPath(id: string): string | null {
    this.enter('logPath', id);
    this.mustGet(id);
    const path = join(this.dir, `${id}.log`);
    return existsSync(path) ? path : null;
  }

  followLog(id: string, onChunk: (text: string) => void): () => void {
    this.enter('followLog', id);
    const set = this.followers.get(id) ?? new Set();
    set.add(onChunk);
    this.followers.set(id, set);
    return () => {
      set.delete(onChunk);
    };
  }

  subscribe(listener: (event: EngineEvent) => void): () => void {
    this.enter('subscribe');
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  plugins(): Record<string, unknown>[] {
    this.enter('plugins');
    return this.pluginList.map((p) => ({ ...p }));
  }

  async shutdown(): Promise<void> {
    this.enter('shutdown');
  }

  // ---- internals -------------------------------------------------------------

  private enter(method: Method, ...args: unknown[]): void {
    this.calls.push({ method, args });
    const fault = this.faults.get(method);
    if (fault) throw fault();
  }

  private publish(event: EngineEvent): void {
    for (const l of [...this.listeners]) l(event);
  }

  /** As the engine: a template that does not validate is refused, or with `invalidTemplate: 'fail'` gives an image FAILED at once. */
  private failedAtOnce(kind: ImageKind, template: string, opts: SubmitOptions, fields: Partial<ImageRecord>): ImageRecord | null {
    try {
      this.checkTemplate(template);
      return null;
    } catch (e) {
      if (opts.invalidTemplate !== 'fail') throw e;
      const { code, message, details } = e as EngineError;
      const image = this.addImage(kind, { ...fields, template, status: 'FAILED', error: { code, message, details: details as Record<string, unknown> } });
      return this.transition(image.id, 'failed', { event: 'template_invalid' });
    }
  }

  private checkTemplate(template: string): void {
    if (!template.trimStart().startsWith('<template')) throw new EngineError('template_invalid', 'line 1, col 1: the document is not a <template>', { line: 1, column: 1 });
  }

  private mustGet(id: string): ImageRecord {
    const image = this.images.get(id);
    if (!image) throw new EngineError('image_not_found', `no image with id ${id}`);
    return image;
  }
}
