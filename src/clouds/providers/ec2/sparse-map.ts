// Which parts of a raw image hold data, read from the filesystem's sparse map before any byte is
// read: holes are skipped without being looked at. Node has no lseek(SEEK_DATA/SEEK_HOLE), so the
// map comes from `qemu-img map`, which asks the kernel exactly that. The map is an upper bound
// (allocated extents can hold zeros); the worker's scan of each candidate block decides.
import { stat } from 'node:fs/promises';
import { ProviderError } from '../errors.js';
import { runToolChecked } from '../tool.js';

export interface DataRange {
  offset: number;
  length: number;
}

interface MapEntry {
  start: number;
  length: number;
  data?: boolean;
  zero?: boolean;
}

/** The byte ranges of `file` that may hold data (ascending, not overlapping). */
export async function dataRanges(file: string, signal?: AbortSignal, qemuImg = 'qemu-img'): Promise<DataRange[]> {
  const { size } = await stat(file);
  if (size === 0) return [];
  const { stdout } = await runToolChecked(qemuImg, ['map', '-f', 'raw', '--output=json', file], { signal });
  let entries: unknown;
  try {
    entries = JSON.parse(stdout);
  } catch {
    throw new ProviderError('tool_failed', `${qemuImg} map printed no JSON map for the image`);
  }
  if (!Array.isArray(entries)) throw new ProviderError('tool_failed', `${qemuImg} map printed no JSON map for the image`);
  const ranges: DataRange[] = [];
  for (const entry of entries as MapEntry[]) {
    if (!entry.data || entry.zero) continue;
    const last = ranges.at(-1);
    if (last && last.offset + last.length === entry.start) last.length += entry.length;
    else ranges.push({ offset: entry.start, length: entry.length });
  }
  return ranges;
}

/** The indexes of the `blockSize` blocks that the ranges touch, ascending. */
export function blocksTouched(ranges: DataRange[], blockSize: number): number[] {
  const indexes: number[] = [];
  for (const { offset, length } of ranges) {
    if (length <= 0) continue;
    const first = Math.floor(offset / blockSize);
    const last = Math.floor((offset + length - 1) / blockSize);
    for (let i = Math.max(first, (indexes.at(-1) ?? -1) + 1); i <= last; i++) indexes.push(i);
  }
  return indexes;
}

/** Bytes the filesystem has allocated for the file (what a sparse-aware copy reads). */
export async function allocatedBytes(file: string): Promise<number> {
  const { blocks } = await stat(file);
  return blocks * 512;
}
