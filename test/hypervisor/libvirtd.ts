// The host's libvirtd, as .ci/setup runs it (`libvirtd -d`, no systemd): stopped and started again by the fault tests.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';
import { processAlive } from '../../src/hypervisor/processes.js';
import { removeTestGuest, type TestGuest } from '../guest/build-guest.js';
import { buildTestGuest, LIBVIRT_URI, waitFor } from './helpers.js';

function libvirtdPids(): number[] {
  const r = spawnSync('pgrep', ['-x', 'libvirtd'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

const libvirtAnswers = () => spawnSync('virsh', ['-c', LIBVIRT_URI, 'version'], { stdio: 'ignore', timeout: 10_000 }).status === 0;

export async function stopLibvirtd(): Promise<void> {
  const pids = libvirtdPids();
  for (const pid of pids) process.kill(pid, 'SIGTERM');
  await waitFor('libvirtd to stop', () => pids.every((p) => !processAlive(p)), 20_000);
}

/** Starts libvirtd as .ci/setup does, when it is not running. */
export async function ensureLibvirtd(): Promise<void> {
  if (libvirtdPids().length && libvirtAnswers()) return;
  spawnSync('libvirtd', ['-d'], { stdio: 'ignore' });
  await waitFor('libvirtd to answer', libvirtAnswers, 20_000, 200);
}

export const BOOT_TIMEOUT_MS = 90_000;
export const TEST_TIMEOUT_MS = 180_000;

/** The busybox guest of a fault test file, built before its tests; libvirtd runs again when the file ends. */
export function faultTestGuest(): { readonly current: TestGuest } {
  const holder = {} as { current: TestGuest };
  beforeAll(async () => {
    holder.current = await buildTestGuest();
  });
  afterAll(async () => {
    await ensureLibvirtd();
    await removeTestGuest();
  });
  return holder;
}
