// OpenStack: the `openstack-kvm` target (qcow2) into Glance, after Keystone v3 password auth.
import { stat } from 'node:fs/promises';
import { cleanupAfterFailure, cleanupPolicy, withLeftovers } from '../cleanup-budget.js';
import { ProviderError, throwIfAborted } from '../errors.js';
import type { RetryPolicy } from '../retry.js';
import { retryPolicy, settingsOf } from '../settings.js';
import type { CleanupRequest, DeleteRequest, ProviderPush, ProviderResource, PushContext, PushResult } from '../types.js';
import { openstackAccess, type OpenstackAccess } from './access.js';
import { diskFormatOf } from '../disk-format.js';
import { createImage, deleteImage, uploadImageData, waitForActive, type GlanceSession } from './glance.js';
import { keystoneLogin } from './keystone.js';

export const openstackProvider: ProviderPush = {
  targets: ['openstack-kvm'],

  async push(ctx: PushContext): Promise<PushResult> {
    const settings = settingsOf(ctx.options);
    const access = openstackAccess(ctx.provider, ctx.credentials);
    const { secrets } = access;
    const log = secrets.logger(ctx.log);
    const policy = retryPolicy(settings);
    const made: ProviderResource[] = [];
    let session: GlanceSession | undefined;
    try {
      const opened = await openSession(access, policy, log, ctx.signal);
      session = opened.session;
      const diskFormat = await diskFormatOf(ctx.file);
      const { size } = await stat(ctx.file);
      const image = await createImage(
        session,
        {
          name: `${ctx.templateName} ${ctx.imageId}`,
          disk_format: diskFormat,
          container_format: 'bare',
          visibility: 'private',
          architecture: ctx.arch,
          imagefactory_image_id: ctx.imageId,
        },
        ctx.signal,
      );
      const resource = { kind: 'glance-image', id: image.id };
      made.push(resource);
      ctx.record(resource);
      throwIfAborted(ctx.signal, 'the Glance push');
      await uploadImageData(session, image.id, { file: ctx.file, start: 0, length: size }, ctx.signal, (bytes) =>
        ctx.progress({ fraction: size ? (0.9 * bytes) / size : 0.9, phase: 'uploading', activity: `Uploading to Glance: ${bytes} of ${size} bytes`, counters: { bytesSent: bytes, bytesTotal: size } }),
      );
      ctx.progress({ fraction: 0.92, phase: 'registering', activity: `Waiting for Glance image ${image.id} to become active` });
      const active = await waitForActive(session, image.id, settings.pollIntervalMs, ctx.signal);
      ctx.progress({ fraction: 1, phase: 'registering', activity: `Glance image ${image.id} is active` });
      log(`Glance push done: image ${image.id} (${diskFormat}, ${active.size ?? size} bytes)`);
      return {
        identifierOnProvider: image.id,
        ...(opened.projectId ? { providerAccountIdentifier: opened.projectId } : {}),
        resources: [...made],
        facts: { glance_url: session.url, disk_format: diskFormat, size: active.size ?? size, checksum: active.checksum ?? null, os_hash_value: active.os_hash_value ?? null },
      };
    } catch (error) {
      const open = session;
      const left = open ? await cleanupAfterFailure(made, async (resources, signal) => removeImages({ ...open, policy: cleanupPolicy(policy) }, resources, signal), log, (t) => secrets.scrub(t)) : made;
      throw withLeftovers(secrets.error(error), left);
    }
  },

  async cleanup(request: CleanupRequest): Promise<void> {
    if (!request.resources.some((r) => r.kind === 'glance-image')) return;
    await withSession(request, (session) => removeImages(session, request.resources, request.signal));
  },

  async delete(request: DeleteRequest): Promise<void> {
    await withSession(request, (session) => removeImages(session, [{ kind: 'glance-image', id: request.identifierOnProvider }], request.signal));
  },
};

async function openSession(access: OpenstackAccess, policy: RetryPolicy, log: (line: string) => void, signal?: AbortSignal): Promise<{ session: GlanceSession; projectId?: string }> {
  if (!access.keystone) return { session: { url: access.glanceUrl!, policy, log } };
  const keystone = await keystoneLogin(access.keystone, { interface: access.interface, ...(access.region ? { region: access.region } : {}) }, policy, access.secrets, signal, log);
  const url = access.glanceUrl ?? keystone.imageEndpoint;
  if (!url) throw new ProviderError('invalid_provider', `Keystone's catalog has no ${access.interface} image endpoint${access.region ? ` in ${access.region}` : ''}; give the provider a glance_url`);
  return { session: { url, token: keystone.token, policy, log }, projectId: keystone.projectId };
}

async function withSession(request: CleanupRequest | DeleteRequest, work: (session: GlanceSession) => Promise<void>): Promise<void> {
  const access = openstackAccess(request.provider, request.credentials);
  try {
    const { session } = await openSession(access, retryPolicy(settingsOf(request.options)), access.secrets.logger(request.log ?? (() => {})), request.signal);
    await work(session);
  } catch (error) {
    throw access.secrets.error(error);
  }
}

async function removeImages(session: GlanceSession, resources: ProviderResource[], signal?: AbortSignal): Promise<void> {
  for (const r of resources.filter((r) => r.kind === 'glance-image')) await deleteImage(session, r.id, signal);
}
