import { copyFile, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { exists } from '../../os/exists.js';
import { StepError } from '../../model/index.js';
import type { EngineStep } from './types.js';

const CHECKSUMMING = 'Checksumming the image body (sha256)';

/**
 * Freezes the finished disk as the image body: moved into the warehouse,
 * checksummed in the worker pool, made read-only, its checksum, size and
 * format recorded. Repeatable: a body already moved is checksummed again.
 */
export const snapshot: EngineStep = {
  progress: [85, 100],
  async canResume(env) {
    return (await exists(env.diskPath)) || env.bodies.exists(env.id);
  },
  async run(env, signal) {
    const bodyPath = env.bodies.pathFor(env.id);
    if (await exists(env.diskPath)) {
      await mkdir(dirname(bodyPath), { recursive: true });
      await moveFile(env.diskPath, bodyPath);
    } else if (!env.bodies.exists(env.id)) {
      throw new StepError('disk_missing', `the install produced no disk at ${env.diskPath}`);
    }
    env.progress(0, CHECKSUMMING);
    const sha256 = await env.pool.sha256(bodyPath, { signal, onProgress: (done, total) => env.progress(total ? (done / total) * 100 : 100, CHECKSUMMING) });
    env.bodies.freeze(env.id);
    const size = (await stat(bodyPath)).size;
    env.update({ bodyPath, properties: { ...env.image().properties, sha256, size, format: await diskFormat(bodyPath) } });
  },
  async undo(env) {
    env.bodies.remove(env.id);
    env.update({ bodyPath: null });
  },
};

/** qcow2 by its magic number, raw otherwise. */
async function diskFormat(file: string): Promise<'qcow2' | 'raw'> {
  const fh = await open(file, 'r');
  try {
    const magic = Buffer.alloc(4);
    await fh.read(magic, 0, 4, 0);
    return magic.equals(Buffer.from('QFI\xfb', 'latin1')) ? 'qcow2' : 'raw';
  } finally {
    await fh.close();
  }
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await copyFile(from, to);
    await unlink(from);
  }
}
