// A small OCI image archive written by hand (no dependency on the docker target's builder): one
// uncompressed layer holding `size` random bytes in a file, a config, a manifest, index.json and
// oci-layout, packed with tar as an oci-archive.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface OciFixture {
  archive: string;
  manifestDigest: string;
  layerDigest: string;
  configDigest: string;
  layerSize: number;
}

const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

export async function makeOciArchive(dir: string, payloadBytes: number): Promise<OciFixture> {
  const root = join(dir, 'rootfs');
  const layout = join(dir, 'layout');
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(root, 'etc', 'os-release'), 'ID=fixture\n');
  await writeFile(join(root, 'payload'), randomBytes(payloadBytes));
  const layerTar = join(dir, 'layer.tar');
  execFileSync('tar', ['-C', root, '--owner=0', '--group=0', '-cf', layerTar, '.']);
  const layer = await readFile(layerTar);
  const layerDigest = sha256(layer);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [layerDigest] }, history: [{ created_by: 'imagefactory test' }] }),
  );
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    }),
  );
  const manifestDigest = sha256(manifest);
  for (const [digest, data] of [
    [layerDigest, layer],
    [configDigest, config],
    [manifestDigest, manifest],
  ] as const) {
    await writeFile(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)), data);
  }
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
    }),
  );
  const archive = join(dir, 'image.oci.tar');
  execFileSync('tar', ['-C', layout, '-cf', archive, '.']);
  return { archive, manifestDigest, layerDigest, configDigest, layerSize: layer.length };
}
