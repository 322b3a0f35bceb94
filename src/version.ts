import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The version from the project's package.json, found by walking up from this module: one level
 * from `src/version.ts` (vitest), two from `dist/src/version.js` (after tsc).
 */
function readVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    let pkg: unknown;
    try {
      pkg = JSON.parse(readFileSync(candidate, 'utf8'));
    } catch {
      pkg = undefined; // absent or unreadable: keep walking up
    }
    if (typeof pkg === 'object' && pkg !== null) {
      const { name, version } = pkg as { name?: unknown; version?: unknown };
      if (name === 'imagefactory' && typeof version === 'string') return version;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`imagefactory: no package.json named "imagefactory" above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export const VERSION: string = readVersion();
