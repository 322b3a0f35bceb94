// libvirt: the `libvirt` target (qcow2) uploaded as a volume of a storage pool (created if it does
// not exist), and a persistent domain using it defined — not started — under a name from the
// template. DELETE undefines the domain and deletes its volume.
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupAfterFailure, withLeftovers } from '../cleanup-budget.js';
import { diskFormatOf } from '../disk-format.js';
import { ProviderError, throwIfAborted } from '../errors.js';
import { Secrets } from '../secrets.js';
import type { CleanupRequest, DeleteRequest, ProviderPush, ProviderResource, PushContext, PushResult } from '../types.js';
import { libvirtAccess } from './access.js';
import { domainName, domainXml } from './domain-xml.js';
import { deleteVolume, domainExists, ensurePool, lastLine, undefineDomain, virshFor, volumeExists, type Virsh } from './virsh.js';

/** How often the uploaded volume's allocation is read for progress. */
const PROGRESS_POLL_MS = 1000;

export const libvirtProvider: ProviderPush = {
  targets: ['libvirt'],

  async push(ctx: PushContext): Promise<PushResult> {
    const access = libvirtAccess(ctx.provider);
    // No credentials are used; a connection URI with a password in it is still kept out of messages.
    const secrets = new Secrets().add(/\/\/[^/@:]*:([^/@]*)@/.exec(access.uri)?.[1]);
    const log = secrets.logger(ctx.log);
    const virsh = virshFor(access.uri);
    const made: ProviderResource[] = [];
    const record = (resource: ProviderResource) => {
      made.push(resource);
      ctx.record(resource);
    };
    try {
      const pool = await ensurePool(virsh, access.pool, access.poolPath, ctx.signal);
      if (pool === 'created') log(`created storage pool ${access.pool} in ${access.poolPath}`);
      const format = await diskFormatOf(ctx.file);
      const { size } = await stat(ctx.file);
      const name = domainName(ctx.templateName, ctx.imageId);
      const volume = `${name}.${format}`;
      // The names carry the image id: what exists under them is a previous attempt of this push.
      if (await domainExists(virsh, name, ctx.signal)) await undefineDomain(virsh, name, ctx.signal);
      if (await volumeExists(virsh, access.pool, volume, ctx.signal)) await deleteVolume(virsh, access.pool, volume, ctx.signal);

      await virsh.checked(['vol-create-as', access.pool, volume, String(size), '--format', format], { signal: ctx.signal });
      record({ kind: 'libvirt-volume', id: volume, location: access.pool });
      ctx.progress({ fraction: 0.05, phase: 'uploading', activity: `Uploading into volume ${volume} of pool ${access.pool}` });
      await uploadWithProgress(ctx, virsh, access.pool, volume, size);
      throwIfAborted(ctx.signal, 'the libvirt push');

      ctx.progress({ fraction: 0.92, phase: 'registering', activity: `Defining domain ${name}` });
      const xml = domainXml({ name, imageId: ctx.imageId, arch: ctx.arch, pool: access.pool, volume, format }, access);
      await defineDomain(virsh, name, xml, ctx.signal);
      record({ kind: 'libvirt-domain', id: name });
      const path = (await virsh.checked(['vol-path', '--pool', access.pool, volume], { signal: ctx.signal })).stdout.trim();
      ctx.progress({ fraction: 1, phase: 'registering', activity: `Domain ${name} defined` });
      log(`libvirt push done: domain ${name}, volume ${path}`);
      return { identifierOnProvider: name, resources: [...made], facts: { uri: access.uri, pool: access.pool, volume, volume_path: path, format } };
    } catch (error) {
      const left = await cleanupAfterFailure(made, (resources, signal) => removeResources(virsh, resources, signal), log, (t) => secrets.scrub(t));
      throw withLeftovers(secrets.error(error), left);
    }
  },

  async cleanup(request: CleanupRequest): Promise<void> {
    const virsh = virshFor(libvirtAccess(request.provider).uri);
    await removeResources(virsh, request.resources, request.signal);
  },

  async delete(request: DeleteRequest): Promise<void> {
    const access = libvirtAccess(request.provider);
    const virsh = virshFor(access.uri);
    const found: ProviderResource[] = [{ kind: 'libvirt-domain', id: request.identifierOnProvider }];
    const xml = await virsh(['dumpxml', '--inactive', request.identifierOnProvider], request.signal ? { signal: request.signal } : {});
    if (xml.code === 0) {
      for (const m of xml.stdout.matchAll(/<source pool=['"]([^'"]+)['"] volume=['"]([^'"]+)['"]/g)) found.push({ kind: 'libvirt-volume', id: m[2]!, location: m[1]! });
    }
    await removeResources(virsh, [...found, ...(request.resources ?? [])], request.signal);
  },
};

/** `virsh define` of the XML, through a private temporary file (Node's stdin pipe is a socket, which virsh cannot open as /dev/stdin). */
async function defineDomain(virsh: Virsh, name: string, xml: string, signal: AbortSignal): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'imagefactory-domain-'));
  try {
    const file = join(dir, 'domain.xml');
    await writeFile(file, xml, { mode: 0o600 });
    const defined = await virsh(['define', file], { signal });
    if (defined.code !== 0) throw new ProviderError('provider_error', `libvirt refused the domain ${name}: ${lastLine(defined.stderr)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `vol-upload` (killed on abort), with progress from the volume's allocation as it grows. */
async function uploadWithProgress(ctx: PushContext, virsh: Virsh, pool: string, volume: string, size: number): Promise<void> {
  let polling = true;
  const poll = (async () => {
    while (polling) {
      await new Promise((r) => setTimeout(r, PROGRESS_POLL_MS));
      if (!polling) return;
      const info = await virsh(['vol-info', '--bytes', '--pool', pool, volume]).catch(() => undefined);
      const allocated = Number(/^Allocation:\s+(\d+)/m.exec(info?.stdout ?? '')?.[1]);
      if (polling && Number.isFinite(allocated) && size > 0) {
        const done = Math.min(size, allocated);
        ctx.progress({ fraction: 0.05 + (0.85 * done) / size, phase: 'uploading', activity: `Uploading into volume ${volume}: ${done} of ${size} bytes`, counters: { bytesSent: done, bytesTotal: size } });
      }
    }
  })();
  try {
    const uploaded = await virsh(['vol-upload', '--sparse', '--pool', pool, volume, ctx.file], { signal: ctx.signal });
    if (uploaded.code !== 0) throw new ProviderError('provider_error', `libvirt refused the upload into ${volume}: ${lastLine(uploaded.stderr)}`);
  } finally {
    polling = false;
    await poll;
  }
  ctx.progress({ fraction: 0.9, phase: 'uploading', activity: `Uploaded into volume ${volume}`, counters: { bytesSent: size, bytesTotal: size } });
}

/** Domains first, so that no defined domain is left pointing at a deleted volume. */
async function removeResources(virsh: Virsh, resources: ProviderResource[], signal?: AbortSignal): Promise<void> {
  for (const r of resources.filter((r) => r.kind === 'libvirt-domain')) await undefineDomain(virsh, r.id, signal);
  for (const r of resources.filter((r) => r.kind === 'libvirt-volume')) await deleteVolume(virsh, r.location ?? '', r.id, signal);
}
