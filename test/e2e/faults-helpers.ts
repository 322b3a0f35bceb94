import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { expect } from 'vitest';
import { processesOfBuild } from '../../src/engine/reaper.js';
import { daemonHome, getImage, postBase, startDaemon, type Daemon } from '../daemon/helpers.js';

/**
 * Real Debian builds on a live daemon, interrupted at a chosen moment: the
 * moments, a small template, and the check that nothing of a build is left
 * on the host.
 */

export const BUILD_MS = 20 * 60_000;

export const SMALL_DEBIAN = (name: string) => `<template>
  <name>${name}</name>
  <os>
    <name>Debian</name><version>12</version><arch>x86_64</arch>
    <install type="url"><url>http://deb.debian.org/debian</url></install>
    <rootpw>faults-Secret-pw</rootpw>
  </os>
  <files><file name="/etc/faults/hello.txt">hello</file></files>
  <commands><command name="mark">echo marked &gt; /etc/faults/marked</command></commands>
  <disk><size>2GiB</size></disk>
</template>`;

type Image = Record<string, any>;

/** The moments of a real Debian build at which a fault is injected. */
export const MOMENTS: Record<string, { what: string; reached: (image: Image) => boolean; settleMs: number }> = {
  bootstrap: { what: 'mmdebstrap is installing packages', reached: (i) => /^mmdebstrap: (installing|extracting)/.test(i.status_detail.activity), settleMs: 500 },
  assembly: { what: 'the disk is being assembled', reached: (i) => i.status_detail.activity === 'Writing files and assembling the disk', settleMs: 300 },
  boot: { what: 'the customization guest is booting', reached: (i) => i.status_detail.activity === 'Booting the image to run the template commands', settleMs: 3000 },
  snapshot: { what: 'the body is being checksummed', reached: (i) => i.phase === 'snapshotting', settleMs: 0 },
};

/** Polls the image until `reached`, or fails if it ends first. */
export async function waitForMoment(url: string, id: string, moment: keyof typeof MOMENTS, timeoutMs = BUILD_MS): Promise<Image> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const image = await getImage(url, id);
    if (MOMENTS[moment]!.reached(image)) {
      if (MOMENTS[moment]!.settleMs) await new Promise((r) => setTimeout(r, MOMENTS[moment]!.settleMs));
      return image;
    }
    if (['COMPLETE', 'FAILED', 'CANCELLED'].includes(image.status)) throw new Error(`image ${id} ended ${image.status} (${image.status_detail?.error}) before ${MOMENTS[moment]!.what}`);
    if (Date.now() > end) throw new Error(`image ${id} never reached the moment when ${MOMENTS[moment]!.what}; it is ${image.phase}: ${image.status_detail.activity}`);
    await new Promise((r) => setTimeout(r, 40));
  }
}

export function qemuOf(id: string): string[] {
  return spawnSync('pgrep', ['-af', 'qemu-system'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes(id));
}

export function loopDevicesOf(root: string): string[] {
  return spawnSync('losetup', ['-a'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes(root));
}

/** Temporary directories of mmdebstrap (its gpg home) outside any build: a killed mmdebstrap must leave them in its build's work directory. */
export function strayMmdebstrapTemps(): string[] {
  return readdirSync(tmpdir()).filter((n) => n.startsWith('mmdebstrap.'));
}

/** Nothing of the build is on the host: no process, guest, mount, loop device, work file, stray temp dir; the daemon answers. */
export async function expectNothingLeftOf(id: string, home: ReturnType<typeof daemonHome>, daemon: Daemon): Promise<void> {
  expect(processesOfBuild(id)).toEqual([]);
  expect(qemuOf(id)).toEqual([]);
  expect(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(home.root))).toEqual([]);
  expect(loopDevicesOf(home.root)).toEqual([]);
  expect(home.leftovers().filter((f) => f.includes(id))).toEqual([]);
  expect(strayMmdebstrapTemps()).toEqual([]);
  const root = await fetch(`${daemon.url}/imagefactory`);
  expect(root.status).toBe(200);
}

export async function submit(daemon: Daemon, name: string): Promise<string> {
  const posted = await postBase(daemon.url, SMALL_DEBIAN(name));
  expect(posted.status).toBe(202);
  return posted.body.base_image.id as string;
}

export { daemonHome, getImage, startDaemon, type Daemon };
