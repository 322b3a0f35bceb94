// The docker target may be compressed as a whole (its `compress` parameter, as in the original):
// a gzip or xz stream around the oci-archive tar. Blobs are read from offsets in the tar, which a
// compressed stream cannot give, so such an archive is first decompressed into a private
// temporary file (removed by `dispose`). Decompression runs off the event loop (zlib's thread
// pool, or `xz` in its own process).
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { cancelledError, ProviderError } from '../errors.js';

const GZIP = Buffer.from([0x1f, 0x8b]);
const XZ = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

export interface PlainArchive {
  /** The tar to read: the input itself, or its decompressed copy. */
  file: string;
  dispose(): Promise<void>;
}

export async function plainArchive(file: string, signal?: AbortSignal, dir = tmpdir()): Promise<PlainArchive> {
  const handle = await open(file, 'r');
  const magic = Buffer.alloc(6);
  try {
    await handle.read(magic, 0, 6, 0);
  } finally {
    await handle.close();
  }
  const kind = magic.subarray(0, 2).equals(GZIP) ? 'gzip' : magic.equals(XZ) ? 'xz' : undefined;
  if (!kind) return { file, dispose: async () => {} };
  const work = await mkdtemp(join(dir, 'imagefactory-oci-'));
  const out = join(work, 'archive.tar');
  const dispose = () => rm(work, { recursive: true, force: true });
  try {
    if (kind === 'gzip') await pipeline(createReadStream(file), createGunzip(), createWriteStream(out), ...(signal ? [{ signal }] : []));
    else await unxz(file, out, signal);
    return { file: out, dispose };
  } catch (error) {
    await dispose();
    if (signal?.aborted) throw cancelledError('decompressing the OCI archive');
    throw error instanceof ProviderError ? error : new ProviderError('input_invalid', `the ${kind} stream around the OCI archive cannot be decompressed: ${(error as Error).message}`);
  }
}

async function unxz(file: string, out: string, signal?: AbortSignal): Promise<void> {
  const target = await open(out, 'w');
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('xz', ['-dc', file], { stdio: ['ignore', target.fd, 'pipe'], ...(signal ? { signal } : {}) });
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-2000)));
      child.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'ENOENT' ? new ProviderError('tool_failed', 'xz is not installed') : error));
      child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`xz exited with status ${code}: ${stderr.trim()}`))));
    });
  } finally {
    await target.close();
  }
}
