import { afterAll, describe, expect, it } from 'vitest';
import { waitStatus } from '../daemon/helpers.js';
import { BUILD_MS, daemonHome, expectNothingLeftOf, startDaemon, submit, type Daemon } from './faults-helpers.js';

/**
 * Phase limits ending real Debian builds: the installing phase cut during
 * the bootstrap, the customizing phase cut while its guest boots, the
 * snapshotting phase cut while the body is checksummed. Each ends FAILED
 * timeout with nothing left, and the daemon goes on answering.
 */

const started: { home: ReturnType<typeof daemonHome>; daemon: Daemon }[] = [];
afterAll(async () => {
  for (const s of started) {
    await s.daemon.stop();
    s.home.remove();
  }
});

async function timedOut(phase: 'installing' | 'customizing' | 'snapshotting', seconds: number): Promise<void> {
  const home = daemonHome({ phase_timeouts: { [phase]: seconds } });
  const daemon = await startDaemon(home.config);
  started.push({ home, daemon });
  const id = await submit(daemon, `timeout-in-${phase}`);
  const image = await waitStatus(daemon.url, id, ['CANCELLED', 'FAILED', 'COMPLETE'], BUILD_MS);
  expect([image.status, image.status_detail.error_code]).toEqual(['FAILED', 'timeout']);
  expect(image.status_detail.error).toBe(`the ${phase} phase exceeded its limit of ${seconds} s`);
  await expectNothingLeftOf(id, home, daemon);
}

describe('a phase limit on a real Debian build', () => {
  it('cuts the bootstrap, the customization boot and the checksum of the body, leaving nothing behind', async () => {
    await Promise.all([timedOut('installing', 12), timedOut('customizing', 8), timedOut('snapshotting', 0.2)]);
  }, BUILD_MS);
});
