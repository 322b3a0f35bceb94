import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitStatus } from '../daemon/helpers.js';
import { BUILD_MS, daemonHome, expectNothingLeftOf, startDaemon, submit, waitForMoment, type Daemon } from './faults-helpers.js';

/**
 * Cancelling real Debian builds at each moment of their work: during the
 * bootstrap (mmdebstrap's mounts live), the disk assembly, the customization
 * boot and the snapshot. Two builds run side by side to keep it short.
 */

let home: ReturnType<typeof daemonHome>;
let daemon: Daemon;

beforeAll(async () => {
  home = daemonHome({ max_concurrent_local_sessions: 2 });
  daemon = await startDaemon(home.config);
});
afterAll(async () => {
  await daemon?.stop();
  home?.remove();
});

async function cancelAt(moment: 'bootstrap' | 'assembly' | 'boot' | 'snapshot'): Promise<void> {
  const id = await submit(daemon, `cancel-at-${moment}`);
  await waitForMoment(daemon.url, id, moment);
  const res = await fetch(`${daemon.url}/imagefactory/base_images/${id}/cancel`, { method: 'POST' });
  expect(res.status, `cancel at ${moment}`).toBe(202);
  const image = await waitStatus(daemon.url, id, ['CANCELLED', 'FAILED', 'COMPLETE'], 60_000);
  expect([image.status, image.status_detail.error_code], `cancelled at ${moment}: ${image.status_detail.error}`).toEqual(['CANCELLED', 'cancelled']);
  await expectNothingLeftOf(id, home, daemon);
}

describe('cancelling a real Debian build', () => {
  it('during the bootstrap and during the disk assembly leaves nothing behind', async () => {
    await Promise.all([cancelAt('bootstrap'), cancelAt('assembly')]);
  }, BUILD_MS);

  it('during the customization boot and during the snapshot leaves nothing behind', async () => {
    await Promise.all([cancelAt('boot'), cancelAt('snapshot')]);
  }, BUILD_MS);
});
