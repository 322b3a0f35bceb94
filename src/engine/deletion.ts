import type { PushTarget } from '../clouds/providers/types.js';
import { isFinalStatus, StepError, type ImageRecord } from '../model/index.js';
import type { EngineDeps } from './deps.js';
import { EngineError } from './errors.js';
import { describeResources, providerResources } from './provider-resources.js';
import type { Supervisor } from './supervisor.js';
import type { DeleteRequest } from './types.js';
import type { BuildWork } from './work.js';

/** Where and as whom a provider image is removed from its provider; the credentials live only as long as the deletion. */
export interface RemoteDeletion {
  target: string;
  provider: string;
  credentials: string;
}

/**
 * Deleting images: children first (with `cascade`), a running build
 * cancelled and waited for, a provider image removed from its provider when
 * the request carries provider and credentials, then the body, the
 * leftovers and the record. It runs in the background; a failure marks the
 * image DELETEFAILED with the reason, and a DELETE may be sent again.
 */
export class Deletion {
  constructor(
    private readonly deps: EngineDeps,
    private readonly supervisor: Supervisor,
    private readonly work: BuildWork,
  ) {}

  /** The provider side of a provider image's DELETE, checked before anything starts. */
  remoteOf(image: ImageRecord, opts: DeleteRequest): RemoteDeletion {
    const target = opts.target ?? image.target ?? '';
    if (opts.target !== undefined && image.target !== null && opts.target !== image.target) {
      throw new EngineError('bad_request', `provider image ${image.id} is a ${image.target} image, not ${opts.target}`, { field: 'target' });
    }
    const { targets } = this.deps.providers;
    if (!targets.includes(target)) throw new EngineError('not_supported', `no provider push for the target ${target} (there are: ${targets.join(', ')})`, { target });
    return { target, provider: opts.provider ?? image.provider ?? '', credentials: opts.credentials ?? '' };
  }

  request(image: ImageRecord, opts: { cascade?: boolean | undefined; remote?: RemoteDeletion | null }): void {
    const children = this.deps.catalog.children(image.id);
    if (children.length && !opts.cascade) {
      throw new EngineError('conflict', `image ${image.id} has ${children.length} child image(s); delete them first or pass cascade=true`, {
        children: children.map((c) => c.id),
      });
    }
    if (image.status === 'DELETING') return;
    void this.deleteTree(image, opts.remote ?? null).catch((e: Error) => this.deps.log(`deleting ${image.id} failed: ${e.message}`));
  }

  deleteTree = async (image: ImageRecord, remote: RemoteDeletion | null = null): Promise<void> => {
    for (const child of this.deps.catalog.children(image.id)) await this.deleteTree(child);
    if (this.supervisor.builds.has(image.id)) {
      await new Promise<void>((resolve) => {
        const off = this.supervisor.subscribe((e) => {
          if (e.image.id === image.id && isFinalStatus(e.image.status)) {
            off();
            resolve();
          }
        });
        this.supervisor.cancel(image.id);
      });
    }
    const current = this.deps.catalog.getImage(image.id);
    if (!current) return;
    const transition = this.deps.catalog.recordTransition(
      { imageId: image.id, from: current.phase, to: 'deleting', event: 'DELETE' },
      {
        status: 'DELETING',
        activity: remote ? 'Deleting the image from the provider' : 'Deleting the image',
        // A restart in the middle must not forget the provider side (recovery): the credentials did not survive it.
        ...(remote ? { properties: { ...current.properties, deleting_from_provider: true } } : {}),
      },
      this.deps.catalog.loadSnapshot(image.id),
    );
    this.supervisor.publish({ type: 'transition', image: this.deps.catalog.getImage(image.id)!, transition });
    try {
      if (remote) await this.deleteFromProvider(this.deps.catalog.getImage(image.id)!, remote);
      this.deps.bodies.remove(image.id);
      const { left } = await this.work.reapAll(image.id);
      if (left.length) throw new Error(`could not remove ${left.join('; ')}`);
      this.deps.catalog.deleteImage(image.id);
      this.supervisor.publish({ type: 'deleted', image: { ...current, status: 'DELETED', phase: 'deleted', updated: new Date().toISOString() } });
    } catch (e) {
      const code = e instanceof StepError ? e.code : 'delete_failed';
      const failed = this.deps.catalog.updateImage(image.id, { status: 'DELETEFAILED', activity: 'Deleting the image failed', error: { code, message: (e as Error).message } });
      this.supervisor.publish({ type: 'progress', image: failed });
      throw e;
    }
  };

  /** The published image (its identifier) or, for a build that never finished, what its push had created. */
  private async deleteFromProvider(image: ImageRecord, remote: RemoteDeletion): Promise<void> {
    const log = (line: string) => this.deps.logs.write(image.id, line);
    const push = await this.deps.providers.load(remote.target);
    const resources = providerResources(image);
    const access = { target: remote.target as PushTarget, provider: remote.provider, credentials: remote.credentials, log, options: this.deps.settings.push };
    if (image.identifierOnProvider) {
      await push.delete({ ...access, identifierOnProvider: image.identifierOnProvider, resources });
      log(`deleted ${image.identifierOnProvider} from the provider${resources.length ? ` (${describeResources(resources)})` : ''}`);
    } else if (resources.length) {
      await push.cleanup({ ...access, resources });
      log(`removed from the provider: ${describeResources(resources)}`);
    } else {
      log('nothing of this image is on the provider');
    }
  }
}
