import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary directory, removed after the file's tests. */
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'imagefactory-config-'));
  dirs.push(d);
  return d;
}

/** Writes `content` (an object is written as JSON) to `imagefactory.conf` in a fresh directory. */
export function confFile(content: unknown): string {
  const path = join(tempDir(), 'imagefactory.conf');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return path;
}

/** Runs `fn`, expecting it to throw; returns what was thrown. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error, nothing was thrown');
}

export const SECRETS = ['s3cr3t-consumer-value', 'hunter2-db-password', 'AKIA-not-a-real-key-123'];
