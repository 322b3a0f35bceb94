import { readdirSync, readFileSync } from 'node:fs';
import { removeTree } from '../fs/remove-tree.js';
import { join } from 'node:path';
import { BUILD_ID_ENV, killGroup } from './process.js';

/** Prefix of every temporary path of a build, so that leftovers can be found by id. */
export const TEMP_PREFIX = 'imagefactory-';

export function workdirFor(tmpdir: string, id: string): string {
  return join(tmpdir, `${TEMP_PREFIX}${id}`);
}

/**
 * Finds what a build left behind (after a crash the daemon did not see it
 * end): processes carrying the build's id in their environment, and temp
 * paths named after it. Returns a description of what was removed; a path
 * that cannot be removed (a mount inside it) is reported in `left`, never
 * deleted through.
 */
export async function reapBuild(id: string, tmpdir: string, opts: { keepWorkdir?: boolean } = {}): Promise<{ reaped: string[]; left: string[] }> {
  const reaped: string[] = [];
  const left: string[] = [];
  const killed = processesOfBuild(id);
  for (const pid of killed) {
    killGroup(pid, 'SIGKILL');
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
    reaped.push(`process ${pid}`);
  }
  // A killed process in the middle of a write takes a moment to die; its files are only free after.
  const until = Date.now() + KILL_WAIT_MS;
  while (killed.some(alive) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  for (const pid of killed.filter(alive)) left.push(`process ${pid} (still alive after SIGKILL)`);
  let names: string[] = [];
  try {
    names = readdirSync(tmpdir);
  } catch {
    // no tmpdir, nothing to reap
  }
  for (const name of names) {
    if (!name.startsWith(`${TEMP_PREFIX}${id}`)) continue;
    if (opts.keepWorkdir && name === `${TEMP_PREFIX}${id}`) continue;
    try {
      await removeTree(join(tmpdir, name));
      reaped.push(join(tmpdir, name));
    } catch (e) {
      left.push(`${join(tmpdir, name)} (${(e as Error).message})`);
    }
  }
  return { reaped, left };
}

const KILL_WAIT_MS = 5000;

/** Running, not a zombie waiting for its parent. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Pids whose environment names the build (Linux /proc). */
export function processesOfBuild(id: string): number[] {
  const marker = `${BUILD_ID_ENV}=${id}\0`;
  const pids: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return pids;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if ((readFileSync(`/proc/${entry}/environ`, 'latin1') + '\0').includes(marker)) pids.push(Number(entry));
    } catch {
      // exited or not ours to read
    }
  }
  return pids;
}
