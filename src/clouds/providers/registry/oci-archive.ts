// Reading the `docker` target: an oci-archive, i.e. a tar holding an OCI image layout (`oci-layout`,
// `index.json`, `blobs/sha256/…`). The tar is indexed once (headers only) and blobs are then
// streamed from their offsets in it, so a layer of gigabytes is never held in memory.
import { open, type FileHandle } from 'node:fs/promises';
import { ProviderError } from '../errors.js';
import type { FileBody } from '../http.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface OciArchive {
  file: string;
  /** Member path (without a leading `./`) → where its bytes are in the tar. */
  members: Map<string, { start: number; length: number }>;
}

const BLOCK = 512;
export const MEDIA_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

export async function indexOciArchive(file: string): Promise<OciArchive> {
  const handle = await open(file, 'r');
  try {
    const members = new Map<string, { start: number; length: number }>();
    const { size } = await handle.stat();
    const header = Buffer.alloc(BLOCK);
    let at = 0;
    let longName: string | undefined;
    while (at + BLOCK <= size) {
      await readExactly(handle, header, at);
      if (header.every((b) => b === 0)) break;
      const length = parseOctal(header.subarray(124, 136));
      const type = String.fromCharCode(header[156]!);
      const dataStart = at + BLOCK;
      let name = longName ?? ustarName(header);
      longName = undefined;
      if (type === 'L' || type === 'x') {
        // GNU long name, or a pax header whose `path` names the next member.
        const data = Buffer.alloc(length);
        await readExactly(handle, data, dataStart);
        longName = type === 'L' ? data.toString('utf8').replace(/\0.*$/s, '') : paxPath(data);
      } else if (type === '0' || type === '\0' || type === '7') {
        name = name.replace(/^\.\//, '');
        members.set(name, { start: dataStart, length });
      }
      at = dataStart + Math.ceil(length / BLOCK) * BLOCK;
    }
    if (!members.has('index.json')) throw new ProviderError('input_invalid', `${file} is not an OCI image archive (no index.json in it)`);
    return { file, members };
  } finally {
    await handle.close();
  }
}

/** A member's bytes (for the small JSON documents). */
export async function readMember(archive: OciArchive, path: string, maxBytes = 16 * 1024 * 1024): Promise<Buffer> {
  const member = archive.members.get(path);
  if (!member) throw new ProviderError('input_invalid', `the OCI archive has no ${path}`);
  if (member.length > maxBytes) throw new ProviderError('input_invalid', `${path} in the OCI archive is too large for a document`);
  const handle = await open(archive.file, 'r');
  try {
    const data = Buffer.alloc(member.length);
    await readExactly(handle, data, member.start);
    return data;
  } finally {
    await handle.close();
  }
}

/** Where a blob's bytes are, for streaming; checks that its size is what the descriptor says. */
export function blobBody(archive: OciArchive, descriptor: Descriptor): FileBody {
  const member = archive.members.get(blobPath(descriptor.digest));
  if (!member) throw new ProviderError('input_invalid', `the OCI archive lacks the blob ${descriptor.digest}`);
  if (member.length !== descriptor.size) throw new ProviderError('input_invalid', `blob ${descriptor.digest} has ${member.length} bytes, its descriptor says ${descriptor.size}`);
  return { file: archive.file, start: member.start, length: member.length };
}

export function blobPath(digest: string): string {
  const m = /^([a-z0-9]+):([a-f0-9]+)$/.exec(digest);
  if (!m) throw new ProviderError('input_invalid', `not a digest: ${digest}`);
  return `blobs/${m[1]}/${m[2]}`;
}

export interface ImageGraph {
  /** Config and layer blobs, each once. */
  blobs: Descriptor[];
  /** Manifests and indexes below the top, children before parents (push order). */
  manifests: { descriptor: Descriptor; body: Buffer }[];
  /** What the tag names: the single manifest of index.json, or index.json itself as an image index. */
  top: { mediaType: string; body: Buffer };
}

/** Walks index.json down to every blob. */
export async function imageGraph(archive: OciArchive): Promise<ImageGraph> {
  const index = parseJson(await readMember(archive, 'index.json'), 'index.json') as { manifests?: Descriptor[] };
  const roots = index.manifests ?? [];
  if (roots.length === 0) throw new ProviderError('input_invalid', 'the OCI archive\'s index.json lists no manifest');
  const blobs = new Map<string, Descriptor>();
  const manifests: ImageGraph['manifests'] = [];
  const seen = new Set<string>();
  const visit = async (descriptor: Descriptor): Promise<Buffer> => {
    const body = await readMember(archive, blobPath(descriptor.digest));
    const doc = parseJson(body, descriptor.digest) as { mediaType?: string; config?: Descriptor; layers?: Descriptor[]; manifests?: Descriptor[] };
    const mediaType = descriptor.mediaType || doc.mediaType || MEDIA_MANIFEST;
    if (mediaType === MEDIA_INDEX || mediaType === DOCKER_LIST) {
      for (const child of doc.manifests ?? []) await visitOnce(child);
    } else if (mediaType === MEDIA_MANIFEST || mediaType === DOCKER_MANIFEST) {
      for (const blob of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) blobs.set(blob.digest, blob);
    } else {
      throw new ProviderError('input_invalid', `unknown manifest media type ${mediaType}`);
    }
    return body;
  };
  const visitOnce = async (descriptor: Descriptor) => {
    if (seen.has(descriptor.digest)) return;
    seen.add(descriptor.digest);
    const body = await visit(descriptor);
    manifests.push({ descriptor: { ...descriptor, mediaType: descriptor.mediaType || MEDIA_MANIFEST }, body });
  };
  for (const root of roots) await visitOnce(root);
  const top =
    roots.length === 1
      ? { mediaType: roots[0]!.mediaType || MEDIA_MANIFEST, body: manifests.at(-1)!.body }
      : { mediaType: MEDIA_INDEX, body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_INDEX, manifests: roots.map(({ annotations: _a, ...d }) => d) })) };
  if (roots.length === 1) manifests.pop();
  return { blobs: [...blobs.values()], manifests, top };
}

function parseJson(data: Buffer, what: string): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch {
    throw new ProviderError('input_invalid', `${what} in the OCI archive is not JSON`);
  }
}

function ustarName(header: Buffer): string {
  const name = cString(header.subarray(0, 100));
  const magic = header.subarray(257, 262).toString('latin1');
  const prefix = magic === 'ustar' ? cString(header.subarray(345, 500)) : '';
  return prefix ? `${prefix}/${name}` : name;
}

function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end < 0 ? bytes.length : end).toString('utf8');
}

function parseOctal(bytes: Buffer): number {
  if (bytes[0]! & 0x80) {
    // GNU base-256 for sizes of 8 GiB and more.
    let value = 0;
    for (let i = 1; i < bytes.length; i++) value = value * 256 + bytes[i]!;
    return value;
  }
  const text = cString(bytes).trim();
  return text ? parseInt(text, 8) : 0;
}

function paxPath(data: Buffer): string | undefined {
  for (const record of data.toString('utf8').split('\n')) {
    const m = /^\d+ path=(.*)$/.exec(record);
    if (m) return m[1];
  }
  return undefined;
}

async function readExactly(handle: FileHandle, buffer: Buffer, position: number): Promise<void> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, position + filled);
    if (bytesRead === 0) throw new ProviderError('input_invalid', 'the OCI archive ends in the middle of a member');
    filled += bytesRead;
  }
}
