// Piscina task: which of the given fixed-size blocks of a file hold data, and the SHA-256 of each
// that does. The EBS push sends only those blocks, each with its checksum; all-zero blocks are
// never sent. The block past the end of the file is read as if padded with zeros (EBS blocks are
// always whole).
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { setPriority } from 'node:os';
import type { BlockScanTask, ScannedBlock } from '../src/pool/protocol.js';
import { openTaskChannel } from './task-channel.js';

// Background work: see workers/sha256.ts.
try {
  setPriority(10);
} catch {
  // not permitted here: scanning still works, only less politely
}

export default async function blockScan(task: BlockScanTask): Promise<ScannedBlock[]> {
  const channel = await openTaskChannel(task.port);
  try {
    const handle = await open(task.file, 'r');
    try {
      const buffer = Buffer.alloc(task.blockSize);
      const found: ScannedBlock[] = [];
      const total = task.indexes.length;
      channel.progress(0, total);
      for (let i = 0; i < total; i++) {
        channel.throwIfCancelled();
        const index = task.indexes[i]!;
        const { bytesRead } = await handle.read(buffer, 0, task.blockSize, index * task.blockSize);
        if (bytesRead < task.blockSize) buffer.fill(0, bytesRead);
        if (!isAllZero(buffer)) found.push({ index, sha256: createHash('sha256').update(buffer).digest('base64') });
        channel.progress(i + 1, total);
      }
      await channel.finish(total);
      return found;
    } finally {
      await handle.close();
    }
  } finally {
    channel.close();
  }
}

const ZEROS = Buffer.alloc(64 * 1024);

/** memcmp against a zero page, 64 KiB at a time: far faster than a byte loop. */
function isAllZero(buffer: Buffer): boolean {
  for (let at = 0; at < buffer.length; at += ZEROS.length) {
    const end = Math.min(buffer.length, at + ZEROS.length);
    if (buffer.compare(ZEROS, 0, end - at, at, end) !== 0) return false;
  }
  return true;
}
