/** Temp directories that every test leaves behind it, and builders for image records. */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect } from 'vitest';
import { newImageRecord, type ImageRecord } from '../../src/model/index.js';

/**
 * Returns a maker of fresh temp directories under os.tmpdir(); after each
 * test they are removed, and the test fails if any is still there.
 */
export function useTempDirs(prefix: string): () => string {
  const made: string[] = [];
  afterEach(() => {
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
    const left = readdirSync(tmpdir()).filter((name) => name.startsWith(prefix));
    expect(left, 'temp directories left behind').toEqual([]);
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    made.push(dir);
    expect(existsSync(dir)).toBe(true);
    return dir;
  };
}

let clock = Date.parse('2024-05-01T10:00:00.000Z');

/** A base image record with every field set to something plain; `over` replaces fields. */
export function imageRecord(over: Partial<ImageRecord> = {}): ImageRecord {
  clock += 1000;
  return newImageRecord(randomUUID(), 'BaseImage', new Date(clock), {
    phase: 'queued',
    activity: 'Queued',
    template: '<template><name>t</name></template>',
    ...over,
  });
}
