import { readFileSync, realpathSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { resolve, sep } from 'node:path';

/**
 * Deleting a build's directories without ever descending into a mount: a
 * tool that mounts /proc, /sys or /dev inside a tree and dies leaves them
 * mounted, and a recursive delete would then walk into the host's own.
 */

export class MountedTreeError extends Error {
  readonly code = 'mounts_left';
  constructor(
    readonly path: string,
    readonly mounts: string[],
  ) {
    super(`refusing to delete ${path}: ${mounts.length} filesystem(s) still mounted inside it (${mounts.join(', ')})`);
    this.name = 'MountedTreeError';
  }
}

/** Mount points at or below `path`, as this process's mount namespace sees them. */
export function mountsUnder(path: string): string[] {
  const root = canonical(path);
  let table: string;
  try {
    table = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const line of table.split('\n')) {
    const point = line.split(' ')[4];
    if (!point) continue;
    // mountinfo escapes space, tab, newline and backslash as octal.
    const mount = point.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mount === root || mount.startsWith(root === sep ? sep : root + sep)) found.push(mount);
  }
  return found;
}

function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Removes `path` recursively unless something is mounted inside it. Mounts
 * of a namespace whose last process was just killed vanish within moments,
 * so they are waited for (up to `waitMs`) before refusing.
 */
export async function removeTree(path: string, opts: { waitMs?: number } = {}): Promise<void> {
  const until = Date.now() + (opts.waitMs ?? 5000);
  let mounts = mountsUnder(path);
  while (mounts.length && Date.now() < until) {
    await sleep(100);
    mounts = mountsUnder(path);
  }
  if (mounts.length) throw new MountedTreeError(path, mounts);
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}

/** The synchronous form, for paths that must be gone before a transition is published; refuses at once. */
export function removeTreeSync(path: string): void {
  const mounts = mountsUnder(path);
  if (mounts.length) throw new MountedTreeError(path, mounts);
  rmSync(path, { recursive: true, force: true, maxRetries: 3 });
}
