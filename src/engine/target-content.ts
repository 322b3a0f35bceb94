import { readFileSync, statSync } from 'node:fs';
import { parseTargetContent, TargetContentError, type TargetContentFile } from '../clouds/target-content.js';

/**
 * The target content file (`target_content`), read when a submission or a
 * target step needs it and kept while the file is unchanged (same size and
 * modification time): submissions are synchronous, and an operator's edit
 * takes effect without a restart.
 */

const cache = new Map<string, { stamp: string; file: TargetContentFile }>();

/** The parsed file; no path or a missing file has no includes; a malformed one throws `target_content_invalid`. */
export function targetContentFile(path: string | null): TargetContentFile {
  if (path === null) return { path: '(none)', includes: [] };
  let stamp: string;
  try {
    const s = statSync(path);
    stamp = `${s.size}:${s.mtimeMs}:${s.ino}`;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { path, includes: [] };
    throw new TargetContentError(`${path}: cannot be read: ${(e as Error).message}`);
  }
  const known = cache.get(path);
  if (known?.stamp === stamp) return known.file;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TargetContentError(`${path}: cannot be read: ${(e as Error).message}`);
  }
  const file = parseTargetContent(text, path);
  cache.set(path, { stamp, file });
  return file;
}
