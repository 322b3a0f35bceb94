import { randomUUID } from 'node:crypto';
import { mergeTargetContent, targetContentFor, type TargetContent } from '../clouds/target-content.js';
import type { CloudPlugin } from '../clouds/types.js';
import { imageKindOf, KINDS, newImageRecord, StepError, UNUSABLE_STATUSES, type BuildError, type BuildKind, type ImageKind, type ImageRecord } from '../model/index.js';
import { formatTdlError, type Template } from '../tdl/index.js';
import type { EngineDeps } from './deps.js';
import { EngineError } from './errors.js';
import { stateMeta, type Supervisor } from './supervisor.js';
import { targetContentFile } from './target-content.js';
import type { BaseImageRequest, ProviderImageRequest, SubmitOptions, TargetImageRequest } from './types.js';

/**
 * Accepting builds: the domain rules of a request (the request's shape was
 * checked by the API), the template parsed once and kept with the build,
 * the target's parameters checked by its cloud plugin, capacity, and the
 * record written before the machine starts. A target or provider built
 * from a template starts its base (and target) too, each its own machine;
 * the target content is merged into that base's template, so the bootstrap
 * installs it.
 */
export class Submission {
  constructor(
    private readonly deps: EngineDeps,
    private readonly supervisor: Supervisor,
  ) {}

  base(req: BaseImageRequest, opts: SubmitOptions = {}): ImageRecord {
    const parameters = req.parameters ?? {};
    return this.orFailedAtOnce('base', { template: req.template, parameters }, opts, () => {
      const template = this.parse(req.template);
      this.checkCapacity(1);
      return this.start('base', { template: req.template, parameters }, template);
    });
  }

  target(req: TargetImageRequest, opts: SubmitOptions = {}): ImageRecord {
    if ((req.baseImageId === undefined) === (req.template === undefined)) throw new EngineError('bad_request', 'give exactly one of base_image_id and template');
    const fields = { template: req.template ?? null, parameters: req.parameters ?? {}, target: req.target, baseImageId: req.baseImageId ?? null };
    return this.orFailedAtOnce('target', fields, opts, () => this.startTarget(req, 0));
  }

  provider(req: ProviderImageRequest, opts: SubmitOptions = {}): ImageRecord {
    if ((req.targetImageId === undefined) === (req.template === undefined)) throw new EngineError('bad_request', 'give exactly one of target_image_id and template');
    const parameters = req.parameters ?? {};
    const fields = { template: req.template ?? null, parameters, target: req.target, provider: req.provider, targetImageId: req.targetImageId ?? null };
    return this.orFailedAtOnce('provider', fields, opts, () => {
      this.checkProvider(req.target);
      let target: ImageRecord;
      let owned: string | null = null;
      if (req.template !== undefined) {
        target = this.startTarget({ target: req.target, template: req.template, parameters }, 1);
        owned = target.id;
      } else {
        this.checkCapacity(1);
        target = this.usable(req.targetImageId!, 'TargetImage');
        if (target.target !== req.target) throw new EngineError('bad_request', `target image ${target.id} is a ${target.target} image, not ${req.target}`, { field: 'target' });
      }
      const template = owned ? (this.supervisor.builds.get(owned)?.template ?? null) : null;
      return this.start(
        'provider',
        { template: target.template, parameters, targetImageId: target.id, baseImageId: target.baseImageId, target: req.target, provider: req.provider },
        template,
        { ownedParent: owned, credentials: req.credentials },
      );
    });
  }

  /** A target and, from a template, its base with the target content merged in; `more` builds follow in the same request. */
  private startTarget(req: TargetImageRequest, more: number): ImageRecord {
    const parameters = req.parameters ?? {};
    this.checkTarget(req.target, parameters);
    if (req.template === undefined) {
      this.checkCapacity(1 + more);
      const base = this.usable(req.baseImageId!, 'BaseImage');
      return this.start('target', { template: base.template, parameters, baseImageId: base.id, target: req.target }, null);
    }
    const template = this.parse(req.template);
    const content = this.targetContent(req.target, template);
    this.checkCapacity(2 + more);
    // The base keeps the template as sent and the content it merged, so a restored build merges it again the same way (step-env templateOf).
    const properties = content ? { target_content: { target: req.target, ...content } } : {};
    const base = this.start('base', { template: req.template, parameters, properties }, mergeTargetContent(template, content));
    return this.start('target', { template: base.template, parameters, baseImageId: base.id, target: req.target }, template, { ownedParent: base.id });
  }

  /** The target's parameters as its cloud plugin sees them; a target no plugin serves is accepted and fails `plugin_missing`, as the original's did. */
  private checkTarget(target: string, parameters: Record<string, unknown>): void {
    const found = this.deps.registry.findCloud(target);
    if (!found) return;
    try {
      (found.plugin as CloudPlugin).check(target, parameters, this.deps.settings.cloud);
    } catch (e) {
      if (!(e instanceof StepError)) throw e;
      throw new EngineError(e.code === 'not_supported' ? 'not_supported' : 'bad_parameter', e.message, e.details);
    }
  }

  private checkProvider(target: string): void {
    const { targets } = this.deps.providers;
    if (!targets.includes(target)) throw new EngineError('not_supported', `no provider push for the target ${target} (there are: ${targets.join(', ')})`, { target });
  }

  private targetContent(target: string, template: Template): TargetContent | null {
    try {
      return targetContentFor(targetContentFile(this.deps.settings.targetContentPath), target, template);
    } catch (e) {
      if (e instanceof StepError) throw new EngineError('target_content_invalid', e.message);
      throw e;
    }
  }

  private parse(text: string): Template {
    if (typeof text !== 'string' || text.trim() === '') throw new EngineError('bad_request', 'template is required');
    const result = this.deps.parseTemplate(text, { requireRootPassword: this.deps.settings.requireRootPassword });
    if (!result.ok) throw new EngineError('template_invalid', result.errors.map(formatTdlError).join('\n'), { errors: result.errors });
    return result.template;
  }

  /**
   * With `invalidTemplate: 'fail'`, a template that does not validate gives
   * the requested image FAILED at once, its precise errors in the record, as
   * the original Image Factory answered its polling clients; nothing runs.
   */
  private orFailedAtOnce(kind: BuildKind, fields: Partial<ImageRecord>, opts: SubmitOptions, submit: () => ImageRecord): ImageRecord {
    try {
      return submit();
    } catch (e) {
      if (opts.invalidTemplate !== 'fail' || !(e instanceof EngineError) || e.code !== 'template_invalid') throw e;
      const error: BuildError = { code: e.code, message: e.message, ...(e.details ? { details: e.details as Record<string, unknown> } : {}) };
      const record = newImageRecord(randomUUID(), imageKindOf(kind), new Date(), { ...fields, status: 'FAILED', phase: 'failed', activity: stateMeta(kind, 'failed').activity, error });
      this.deps.catalog.insertImage(record);
      const transition = this.deps.catalog.recordTransition({ imageId: record.id, from: null, to: 'failed', event: 'template_invalid' }, {}, undefined);
      this.deps.logs.write(record.id, `${record.kind} ${record.id} submitted with a template that does not validate; FAILED at once:\n${e.message}`);
      const image = this.deps.catalog.getImage(record.id)!;
      this.supervisor.publish({ type: 'transition', image, transition });
      return image;
    }
  }

  private checkCapacity(n: number): void {
    if (this.supervisor.closing) throw new EngineError('shutting_down', 'the daemon is shutting down');
    const waiting = this.supervisor.waiting();
    const max = this.deps.settings.maxQueued;
    if (waiting + n > max) throw new EngineError('queue_full', `the build queue is full (${waiting} waiting, limit ${max}); try again later`);
  }

  private usable(id: string, kind: ImageKind): ImageRecord {
    const image = this.deps.catalog.getImage(id);
    if (!image || image.kind !== kind) throw new EngineError('image_not_found', `no ${kind} with id ${id}`);
    if (UNUSABLE_STATUSES.includes(image.status)) throw new EngineError('conflict', `${kind} ${id} is ${image.status} and cannot be built upon`);
    return image;
  }

  private start(kind: BuildKind, fields: Partial<ImageRecord>, template: Template | null, opts: { ownedParent?: string | null; credentials?: string | null } = {}): ImageRecord {
    const now = new Date();
    const id = randomUUID();
    const deadline = now.getTime() + this.deps.settings.timeoutSeconds * 1000;
    const record = newImageRecord(id, imageKindOf(kind), now, { deadline, ...fields });
    this.deps.catalog.insertImage(record);
    this.deps.logs.write(id, `${record.kind} ${id} submitted; deadline ${new Date(deadline).toISOString()}`);
    this.supervisor.start(record, { input: { imageId: id, deadline, phaseLimits: this.deps.settings.phaseLimits, parentId: parentOf(record) }, template, ...opts });
    return this.deps.catalog.getImage(id)!;
  }
}

/** The image a build waits for: a target's base, a provider's target. */
export function parentOf(image: ImageRecord): string | null {
  const parentKind = KINDS[image.kind].parent;
  return parentKind === 'BaseImage' ? image.baseImageId : parentKind === 'TargetImage' ? image.targetImageId : null;
}
