import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { processesOfBuild } from '../../src/engine/reaper.js';
import { waitStatus } from '../daemon/helpers.js';
import { BUILD_MS, daemonHome, expectNothingLeftOf, getImage, qemuOf, startDaemon, submit, waitForMoment, type Daemon } from './faults-helpers.js';

/**
 * kill -9 of the daemon during a real Debian build, at each moment of its
 * work in turn, and a restart after each: the restarted daemon reaps what
 * the killed one left (mmdebstrap and its mounts, the guest), resumes the
 * build, and in the end nothing of it is left.
 */

const home = daemonHome();
let daemon: Daemon | null = null;
afterAll(async () => {
  await daemon?.stop();
  home.remove();
});

describe('kill -9 of the daemon during a real Debian build', () => {
  it('at the bootstrap, the disk assembly, the customization boot and the snapshot: each restart reaps and resumes', async () => {
    daemon = await startDaemon(home.config);
    const id = await submit(daemon, 'killed-daemon');
    for (const moment of ['bootstrap', 'assembly', 'boot', 'snapshot'] as const) {
      await waitForMoment(daemon.url, id, moment);
      const orphans = processesOfBuild(id);
      await daemon.stop('SIGKILL');
      daemon = await startDaemon(home.config);
      // The orphans of the killed daemon are gone, and so are their mounts.
      expect(processesOfBuild(id).filter((pid) => orphans.includes(pid)), `orphans after kill at ${moment}`).toEqual([]);
      expect(readMounts().filter((l) => l.includes(home.root)), `mounts after kill at ${moment}`).toEqual([]);
      const image = await getImage(daemon.url, id);
      expect(['BUILDING', ...(moment === 'snapshot' ? ['COMPLETE'] : [])], `after kill at ${moment}: ${image.status_detail?.error}`).toContain(image.status);
    }
    const image = await waitStatus(daemon.url, id, ['COMPLETE', 'FAILED', 'CANCELLED'], BUILD_MS);
    expect([image.status, image.status_detail.error]).toEqual(['COMPLETE', null]);
    expect(qemuOf(id)).toEqual([]);
    await expectNothingLeftOf(id, home, daemon);
  }, BUILD_MS);
});

function readMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
}
