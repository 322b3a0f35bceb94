import { readdirSync, readFileSync, rmSync } from 'node:fs';
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
 * paths named after it. Returns a description of what was removed.
 */
export function reapBuild(id: string, tmpdir: string, opts: { keepWorkdir?: boolean } = {}): string[] {
  const reaped: string[] = [];
  for (const pid of processesOfBuild(id)) {
    killGroup(pid, 'SIGKILL');
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
    reaped.push(`process ${pid}`);
  }
  let names: string[] = [];
  try {
    names = readdirSync(tmpdir);
  } catch {
    // no tmpdir, nothing to reap
  }
  for (const name of names) {
    if (!name.startsWith(`${TEMP_PREFIX}${id}`)) continue;
    if (opts.keepWorkdir && name === `${TEMP_PREFIX}${id}`) continue;
    rmSync(join(tmpdir, name), { recursive: true, force: true });
    reaped.push(join(tmpdir, name));
  }
  return reaped;
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
