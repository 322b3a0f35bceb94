import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { StepError } from '../os/plugin.js';
import { openGuestFs } from './guest-fs.js';
import { withImageView } from './image-view.js';
import { partialPath } from './qemu-img.js';
import { convertDir, convertViewPath, type Produce } from './steps.js';
import type { CloudStepContext, ConversionReport } from './types.js';

/**
 * docker: the image's root filesystem as an OCI image archive (an
 * oci-archive: `oci-layout`, `index.json`, `blobs/sha256/…` in a tar), which
 * `podman load`, `skopeo copy oci-archive:…` and `docker load` (which also
 * reads the `manifest.json` written beside it) accept. The filesystem is read
 * with debugfs `rdump` from a read-only view of the overlay: nothing is
 * mounted. Packing (tar, gzip) runs in spawned programs and the digests in
 * the worker pool: never on the event loop.
 */

export interface DockerOptions {
  /** The original's `repository` (default: the template's name, lower-cased) and `tag` (default `latest`). */
  repository: string;
  tag: string;
  /** The original's `compress`: `gzip` compresses the layer (OCI `tar+gzip`); `xz`/`bzip2` compress the whole archive, as the original did. */
  compress: 'gzip' | 'xz' | 'bzip2' | null;
  /** The original's `create_docker_metadata` (default true); false writes the bare root filesystem tar, for `docker import`. */
  metadata: boolean;
  cmd: string[] | null;
  env: string[];
  labels: Record<string, string>;
  comment: string;
}

const DEFAULT_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
const ARCH: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64', i386: '386', ppc64le: 'ppc64le', s390x: 's390x', armv7l: 'arm' };

function jsonParam<T>(value: unknown, name: string, check: (v: unknown) => v is T): T | undefined {
  if (value === undefined || value === null || value === 'null') return undefined;
  let v = value;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      throw new StepError('bad_parameter', `parameter ${name} must be JSON, got ${JSON.stringify(value)}`);
    }
  }
  if (!check(v)) throw new StepError('bad_parameter', `parameter ${name} has the wrong shape: ${JSON.stringify(value)}`);
  return v;
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isStringMap = (v: unknown): v is Record<string, string> => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');

export function dockerOptions(parameters: Record<string, unknown>, templateName: string): DockerOptions {
  const compress = parameters.compress ?? null;
  if (compress !== null && compress !== 'gzip' && compress !== 'xz' && compress !== 'bzip2') throw new StepError('bad_parameter', `parameter compress must be gzip, xz or bzip2 (as the original), not ${JSON.stringify(compress)}`);
  const metadata = parameters.create_docker_metadata ?? true;
  const asBool = typeof metadata === 'string' ? !/^(false|no|0)$/i.test(metadata) : Boolean(metadata);
  const repository = String(parameters.repository ?? templateName).toLowerCase();
  // The reference grammar of the distribution spec, so that podman and registries accept the name.
  if (!/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(repository)) throw new StepError('bad_parameter', `parameter repository ${JSON.stringify(repository)} is not a valid image repository name`);
  const tag = String(parameters.tag ?? 'latest');
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) throw new StepError('bad_parameter', `parameter tag ${JSON.stringify(tag)} is not a valid image tag`);
  return {
    repository,
    tag,
    compress: compress as DockerOptions['compress'],
    metadata: asBool,
    cmd: jsonParam(parameters.docker_cmd, 'docker_cmd', isStrings) ?? null,
    env: jsonParam(parameters.docker_env, 'docker_env', isStrings) ?? DEFAULT_ENV,
    labels: jsonParam(parameters.docker_label, 'docker_label', isStringMap) ?? {},
    comment: String(parameters.comment ?? 'Created by imagefactory'),
  };
}

async function sh(ctx: CloudStepContext, script: string, args: string[], what: string): Promise<void> {
  const r = await ctx.run('sh', ['-c', script, 'sh', ...args]);
  if (r.code !== 0) throw new StepError('pack_failed', `${what} failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`);
}

const sha256Of = (text: string) => createHash('sha256').update(text).digest('hex');

export function dockerProduce(options: (ctx: CloudStepContext) => DockerOptions): Produce {
  return async (ctx, source) => {
    const started = Date.now();
    const o = options(ctx);
    const dir = convertDir(ctx);
    const rootfs = join(dir, 'rootfs');
    const layer = join(dir, 'layer.tar');
    const commands: string[] = [];
    await mkdir(rootfs, { recursive: true });
    ctx.progress(2, 'Reading the root filesystem out of the image (debugfs rdump, no mount)');
    await withImageView(ctx, { image: source.path, format: 'qcow2', path: convertViewPath(ctx), writable: false }, async (view) => {
      const fs = await openGuestFs(ctx, view.path);
      const r = await ctx.run('debugfs', ['-R', `rdump / ${rootfs}`, fs.device]);
      const problems = r.stderr.split('\n').filter((l) => l.trim() && !/^debugfs \d/.test(l));
      if (r.code !== 0 || problems.length) throw new StepError('rootfs_extract_failed', `debugfs rdump failed: ${problems.slice(-3).join(' / ') || r.stderr.trim()}`);
      commands.push('debugfs -R "rdump / rootfs" <overlay root partition>');
    });
    await rm(join(rootfs, 'lost+found'), { recursive: true, force: true });
    ctx.progress(30, 'Packing the root filesystem as a layer (tar)');
    // Numeric owners and sorted names: the same tree always gives the same layer bytes apart from times.
    const tarArgs = ['--format=gnu', '--numeric-owner', '--sort=name', '-C', rootfs, '.'];
    await sh(ctx, 'out="$1"; shift; exec tar -cf "$out" "$@"', [layer, ...tarArgs], 'packing the layer');
    commands.push(`tar -cf layer.tar ${tarArgs.join(' ').replace(rootfs, 'rootfs')}`);
    await rm(rootfs, { recursive: true, force: true });
    const layerSize = (await stat(layer)).size;

    if (!o.metadata) {
      // As the original with create_docker_metadata=false: the bare root filesystem tar (for `docker import`).
      const out = await finishWhole(ctx, layer, o.compress === 'gzip' ? 'gzip' : o.compress, commands);
      return { format: o.compress ? `tar.${o.compress === 'gzip' ? 'gz' : o.compress === 'xz' ? 'xz' : 'bz2'}` : 'tar', disk_format: 'raw', container_format: 'docker', commands, rootfs_tar: true, size: out, seconds: Math.round((Date.now() - started) / 100) / 10 } satisfies ConversionReport;
    }

    ctx.progress(50, 'Checksumming the layer (sha256, in the worker pool)');
    const diffId = await ctx.pool.sha256(layer, { signal: ctx.signal, onProgress: (d, t) => ctx.progress(50 + (10 * d) / Math.max(1, t), 'Checksumming the layer (sha256, in the worker pool)') });
    let blob = layer;
    let mediaType = 'application/vnd.oci.image.layer.v1.tar';
    if (o.compress === 'gzip') {
      ctx.progress(60, 'Compressing the layer (gzip)');
      const gz = `${layer}.gz`;
      await sh(ctx, 'if command -v pigz >/dev/null; then pigz -n -c "$1" > "$2"; else gzip -n -c "$1" > "$2"; fi', [layer, gz], 'compressing the layer');
      commands.push('pigz -n -c layer.tar > layer.tar.gz (gzip -n without pigz)');
      await rm(layer, { force: true });
      blob = gz;
      mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip';
    }
    const blobDigest = await ctx.pool.sha256(blob, { signal: ctx.signal });
    const blobSize = (await stat(blob)).size;
    const oci = join(dir, 'oci');
    const blobs = join(oci, 'blobs', 'sha256');
    await mkdir(blobs, { recursive: true });
    await rename(blob, join(blobs, blobDigest));

    const created = new Date().toISOString();
    const config = {
      created,
      architecture: ARCH[ctx.template.os.arch] ?? ctx.template.os.arch,
      os: 'linux',
      config: { Env: o.env, ...(o.cmd ? { Cmd: o.cmd } : {}), ...(Object.keys(o.labels).length ? { Labels: o.labels } : {}) },
      rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
      history: [{ created, created_by: 'imagefactory docker target', comment: o.comment }],
    };
    const configJson = JSON.stringify(config);
    const configDigest = sha256Of(configJson);
    await writeFile(join(blobs, configDigest), configJson);
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${configDigest}`, size: Buffer.byteLength(configJson) },
      layers: [{ mediaType, digest: `sha256:${blobDigest}`, size: blobSize }],
    };
    const manifestJson = JSON.stringify(manifest);
    const manifestDigest = sha256Of(manifestJson);
    await writeFile(join(blobs, manifestDigest), manifestJson);
    const reference = `${o.repository}:${o.tag}`;
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${manifestDigest}`,
          size: Buffer.byteLength(manifestJson),
          // The tag is the OCI reference name; containerd and docker read the full name from their own key.
          annotations: { 'org.opencontainers.image.ref.name': o.tag, 'io.containerd.image.name': reference },
        },
      ],
    };
    await writeFile(join(oci, 'index.json'), JSON.stringify(index));
    await writeFile(join(oci, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    // docker load before 25 reads only this file; newer docker, podman and skopeo read the OCI index.
    await writeFile(join(oci, 'manifest.json'), JSON.stringify([{ Config: `blobs/sha256/${configDigest}`, RepoTags: [reference], Layers: [`blobs/sha256/${blobDigest}`] }]));

    ctx.progress(80, 'Packing the OCI archive (tar)');
    const archive = join(dir, 'image.tar');
    await sh(ctx, 'exec tar --format=ustar --numeric-owner --owner=0 --group=0 -cf "$1" -C "$2" oci-layout index.json manifest.json blobs', [archive, oci], 'packing the OCI archive');
    commands.push('tar --format=ustar -cf image.tar -C oci oci-layout index.json manifest.json blobs');
    await rm(oci, { recursive: true, force: true });
    const size = await finishWhole(ctx, archive, o.compress === 'xz' || o.compress === 'bzip2' ? o.compress : null, commands);
    return {
      format: o.compress === 'xz' || o.compress === 'bzip2' ? `oci-archive+${o.compress}` : 'oci-archive',
      disk_format: 'raw',
      container_format: 'docker',
      commands,
      oci: {
        reference,
        manifest_digest: `sha256:${manifestDigest}`,
        config_digest: `sha256:${configDigest}`,
        layers: [{ digest: `sha256:${blobDigest}`, media_type: mediaType, size: blobSize, diff_id: `sha256:${diffId}`, uncompressed_size: layerSize }],
      },
      size,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    } satisfies ConversionReport;
  };
}

/** Compresses (or not) `file` into `<outputPath>.partial` and renames it into place; returns its size. */
async function finishWhole(ctx: CloudStepContext, file: string, compress: 'gzip' | 'xz' | 'bzip2' | null, commands: string[]): Promise<number> {
  const partial = partialPath(ctx.outputPath);
  try {
    if (compress) {
      ctx.progress(90, `Compressing the archive (${compress})`);
      const tool = compress === 'gzip' ? 'if command -v pigz >/dev/null; then pigz -n -c "$1"; else gzip -n -c "$1"; fi' : compress === 'xz' ? 'xz -T0 -c "$1"' : 'bzip2 -c "$1"';
      await sh(ctx, `{ ${tool}; } > "$2"`, [file, partial], `compressing with ${compress}`);
      commands.push(`${compress} -c archive > output`);
      await rm(file, { force: true });
    } else await rename(file, partial);
    await rename(partial, ctx.outputPath);
  } catch (e) {
    await rm(partial, { force: true });
    throw e;
  }
  return (await stat(ctx.outputPath)).size;
}
