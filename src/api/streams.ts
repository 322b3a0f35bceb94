import type { ServerResponse } from 'node:http';
import { FINAL_STATUSES, type ImageStatus } from '../store/types.js';

/** A slow reader is cut off rather than buffered without bound. */
export const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/** Writes to a long-lived response; drops the connection of a client that stopped reading. */
export function writeOrDrop(res: ServerResponse, chunk: string | Buffer, log: (line: string) => void, what: string): void {
  if (res.destroyed || res.writableEnded) return;
  res.write(chunk);
  if (res.writableLength > MAX_BUFFERED_BYTES) {
    log(`${what}: client is not reading (${res.writableLength} bytes buffered); closing`);
    res.destroy();
  }
}

export function isFinal(status: ImageStatus): boolean {
  return FINAL_STATUSES.includes(status);
}
