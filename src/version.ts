import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The checkout (or installed package) this code runs from, found by walking
 * up to the package.json named "imagefactory": one level from `src/`
 * (vitest), two from `dist/src/` (after tsc).
 */
function findProject(): { root: string; version: string } {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    let pkg: unknown;
    try {
      pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    } catch {
      pkg = undefined; // absent or unreadable: keep walking up
    }
    if (typeof pkg === 'object' && pkg !== null) {
      const { name, version } = pkg as { name?: unknown; version?: unknown };
      if (name === 'imagefactory' && typeof version === 'string') return { root: dir, version };
    }
    if (dirname(dir) === dir) throw new Error(`imagefactory: no package.json named "imagefactory" above ${start}`);
  }
}

const project = findProject();
export const VERSION: string = project.version;
export const PROJECT_ROOT: string = project.root;
