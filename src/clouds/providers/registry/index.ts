// The `docker` target (an OCI image archive) into an OCI distribution registry: every blob not
// already there, then the manifests, then the tag. The identifier on the provider is the pushed
// reference by digest (`host/repository@sha256:…`); DELETE removes that manifest.
import { cleanupAfterFailure, cleanupPolicy, withLeftovers } from '../cleanup-budget.js';
import { ProviderError, throwIfAborted } from '../errors.js';
import { retryPolicy, settingsOf } from '../settings.js';
import type { CleanupRequest, DeleteRequest, ProviderPush, ProviderResource, PushContext, PushResult } from '../types.js';
import { registryAccess, type RegistryAccess } from './access.js';
import { plainArchive, type PlainArchive } from './decompress.js';
import { DistributionClient } from './distribution.js';
import { blobBody, imageGraph, indexOciArchive } from './oci-archive.js';

export const registryProvider: ProviderPush = {
  targets: ['docker'],

  async push(ctx: PushContext): Promise<PushResult> {
    const settings = settingsOf(ctx.options);
    const access = registryAccess(ctx.provider, ctx.credentials, ctx.parameters, ctx.templateName);
    const { secrets } = access;
    const log = secrets.logger(ctx.log);
    const policy = retryPolicy(settings);
    const client = new DistributionClient(access.location, access.login, policy, secrets, log);
    const made: ProviderResource[] = [];
    const record = (resource: ProviderResource) => {
      made.push(resource);
      ctx.record(resource);
    };
    let plain: PlainArchive | undefined;
    try {
      plain = await plainArchive(ctx.file, ctx.signal);
      const archive = await indexOciArchive(plain.file);
      const graph = await imageGraph(archive);
      const total = graph.blobs.reduce((sum, b) => sum + b.size, 0);
      let done = 0;
      const report = (current: number, activity: string) =>
        ctx.progress({ fraction: total ? (0.95 * (done + current)) / total : 0.95, phase: 'uploading', activity, counters: { bytesSent: done + current, bytesTotal: total } });
      for (const blob of graph.blobs) {
        throwIfAborted(ctx.signal, 'the registry push');
        if (await client.blobExists(blob.digest, ctx.signal)) {
          log(`blob ${blob.digest} is already in ${access.location.repository}`);
        } else {
          const body = blobBody(archive, blob);
          await client.uploadBlob(blob, body, ctx.signal, (bytes) => report(bytes, `Uploading blob ${blob.digest.slice(0, 19)}…`));
          record({ kind: 'registry-blob', id: blob.digest, location: access.location.repository });
        }
        done += blob.size;
        report(0, `Uploaded ${graph.blobs.indexOf(blob) + 1} of ${graph.blobs.length} blobs`);
      }
      ctx.progress({ fraction: 0.96, phase: 'registering', activity: `Tagging ${access.location.repository}:${access.tag}` });
      for (const { descriptor, body } of graph.manifests) {
        const digest = await client.putManifest(descriptor.digest, descriptor.mediaType, body, ctx.signal);
        record({ kind: 'registry-manifest', id: digest, location: access.location.repository });
      }
      throwIfAborted(ctx.signal, 'the registry push');
      const digest = await client.putManifest(access.tag, graph.top.mediaType, graph.top.body, ctx.signal);
      record({ kind: 'registry-manifest', id: digest, location: access.location.repository });
      const reference = `${access.location.host}/${access.location.repository}@${digest}`;
      ctx.progress({ fraction: 1, phase: 'registering', activity: `Pushed ${access.location.host}/${access.location.repository}:${access.tag}` });
      log(`registry push done: ${reference} (tag ${access.tag})`);
      return {
        identifierOnProvider: reference,
        resources: [...made],
        facts: { reference, tag: `${access.location.host}/${access.location.repository}:${access.tag}`, digest, blobs: graph.blobs.length, bytes: total },
      };
    } catch (error) {
      const left = await cleanupAfterFailure(made, (resources, signal) => removeResources(access, new DistributionClient(access.location, access.login, cleanupPolicy(policy), secrets, log), resources, signal), log, (t) => secrets.scrub(t));
      throw withLeftovers(secrets.error(error), left);
    } finally {
      await plain?.dispose();
    }
  },

  async cleanup(request: CleanupRequest): Promise<void> {
    // Resources name their repository; each repository is cleaned with its own client.
    for (const repository of new Set(request.resources.map((r) => r.location ?? ''))) {
      const access = registryAccess(request.provider, request.credentials, repository ? { repository } : {});
      try {
        await removeResources(access, clientFor(access, request), request.resources, request.signal);
      } catch (error) {
        throw access.secrets.error(error);
      }
    }
  },

  async delete(request: DeleteRequest): Promise<void> {
    const m = /^([^/]+)\/(.+)@(sha256:[a-f0-9]{64})$/.exec(request.identifierOnProvider);
    if (!m) throw new ProviderError('invalid_provider', `"${request.identifierOnProvider}" is not a registry reference by digest (host/repository@sha256:…)`);
    const access = registryAccess(request.provider, request.credentials, { repository: m[2] });
    try {
      await clientFor(access, request).deleteManifest(m[3]!, request.signal);
    } catch (error) {
      throw access.secrets.error(error);
    }
  },
};

function clientFor(access: RegistryAccess, request: CleanupRequest | DeleteRequest): DistributionClient {
  return new DistributionClient(access.location, access.login, retryPolicy(settingsOf(request.options)), access.secrets, access.secrets.logger(request.log ?? (() => {})));
}

/** Manifests first (the tag goes with them), then the blobs this push uploaded. */
async function removeResources(access: RegistryAccess, client: DistributionClient, resources: ProviderResource[], signal?: AbortSignal): Promise<void> {
  const mine = resources.filter((r) => !r.location || r.location === access.location.repository);
  for (const r of mine.filter((r) => r.kind === 'registry-manifest').reverse()) await client.deleteManifest(r.id, signal);
  for (const r of mine.filter((r) => r.kind === 'registry-blob')) await client.deleteBlob(r.id, signal);
}
