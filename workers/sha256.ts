// Piscina task: the sha256 of a file, or of a byte range of it, as lowercase hex.
//
// The file is read in `CHUNK_SIZE` pieces into one reused buffer, so memory stays flat whatever the
// file size. Between chunks the task checks the cooperative cancel flag (set by the main thread
// through the task's comlink channel, see workers/task-channel.ts) and reports throttled progress.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { setPriority } from 'node:os';
import type { ByteRange, Sha256Task } from '../src/pool/protocol.js';
import { openTaskChannel } from './task-channel.js';

export const CHUNK_SIZE = 4 * 1024 * 1024;

// Hashing is background work. On Linux a thread's nice value is its own, so
// this lowers only this worker thread: the daemon's event loop (status
// requests, SSE) keeps first call on the CPU. Elsewhere it may not apply.
try {
  setPriority(10);
} catch {
  // not permitted here: hashing still works, only less politely
}

export default async function sha256(task: Sha256Task): Promise<string> {
  const channel = await openTaskChannel(task.port);
  try {
    const handle = await open(task.file, 'r');
    try {
      const { size } = await handle.stat();
      const { start, total } = window(task.file, size, task.range);
      const hash = createHash('sha256');
      const buffer = Buffer.allocUnsafe(Math.max(1, Math.min(CHUNK_SIZE, total)));
      let done = 0;
      channel.progress(0, total);
      while (done < total) {
        channel.throwIfCancelled();
        const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, total - done), start + done);
        if (bytesRead === 0) throw new Error(`${task.file}: the file shrank while being hashed (${done} of ${total} bytes read)`);
        hash.update(buffer.subarray(0, bytesRead));
        done += bytesRead;
        channel.progress(done, total);
      }
      await channel.finish(total);
      return hash.digest('hex');
    } finally {
      await handle.close();
    }
  } finally {
    channel.close();
  }
}

function window(file: string, size: number, range: ByteRange | undefined): { start: number; total: number } {
  if (range === undefined) return { start: 0, total: size };
  if (range.offset + range.length > size) {
    throw new RangeError(`${file}: range ${range.offset}+${range.length} goes past the end of the file (${size} bytes)`);
  }
  return { start: range.offset, total: range.length };
}
