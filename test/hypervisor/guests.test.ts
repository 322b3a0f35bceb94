/**
 * Real guests under TCG on both drivers: the busybox test guest boots, writes
 * its disk and powers off; the watchdog tells a finished install from a
 * stalled, an endless and a cancelled one. The two drivers' suites run at the
 * same time (each one sequentially) to keep the wall time down.
 *
 * libvirt needs libvirtd at qemu:///system (`.ci/setup` starts it); when it
 * is not reachable these tests fail.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InstallError } from '../../src/hypervisor/errors.js';
import { domainXml } from '../../src/hypervisor/libvirt.js';
import { PNG_SIGNATURE } from '../../src/hypervisor/png.js';
import { qemuCommandLine } from '../../src/hypervisor/qemu.js';
import type { ActivitySample, Domain, HypervisorDriver } from '../../src/hypervisor/types.js';
import { watchInstall } from '../../src/hypervisor/watchdog.js';
import { GUEST_DISK_MARKER, GUEST_DONE_MARKER, removeTestGuest, type TestGuest } from '../guest/build-guest.js';
import {
  buildTestGuest,
  consoleHas,
  guestSpec,
  leftovers,
  libvirtDomainNames,
  LIBVIRT_URI,
  openDriver,
  testPrefix,
  waitFor,
  type DriverKind,
} from './helpers.js';

/** An idle host boots the guest in ≈ 7 s; a host busy with other TCG guests and builds can take 30 s or more. */
const BOOT_TIMEOUT_MS = 90_000;
const TEST_TIMEOUT_MS = 150_000;
const STALL_SECONDS = 5;
/** Seconds a failure may take after detection: screenshot, then destroy (libvirt's takes ≈ 2 s on a loaded host). */
const CLEANUP_ALLOWANCE_S = 6;

/** Timings printed at the end, for the record. */
const measured: Record<string, string> = {};

afterAll(async () => {
  console.log(`hypervisor timings:\n${Object.entries(measured).map(([k, v]) => `  ${k}: ${v}`).join('\n')}`);
  await removeTestGuest();
});

async function expectInstallError(p: Promise<unknown>): Promise<InstallError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(InstallError);
    return err as InstallError;
  }
  throw new Error('expected the watch to fail');
}

describe.concurrent.each<DriverKind>(['qemu', 'libvirt'])('the %s driver', (kind) => {
  describe.sequential('with real guests', () => {
    const prefix = testPrefix(kind);
    let driver: HypervisorDriver;
    let guest: TestGuest;
    let n = 0;
    const nextName = (what: string) => `${prefix}${what}-${++n}`;
    const artifacts = () => join(guest.dir, `${kind}-artifacts`);

    let unavailable: unknown;

    beforeAll(async () => {
      guest = await buildTestGuest();
      try {
        driver = await openDriver(kind, join(guest.dir, `${kind}-run`));
      } catch (err) {
        unavailable = err;
      }
    });

    // An unreachable libvirtd fails every test of the suite (a failing beforeAll would only mark them skipped).
    beforeEach(() => {
      if (unavailable) throw unavailable;
    });

    afterEach(async () => {
      // Nothing of this driver's test prefix may survive a test, on any exit path.
      expect(leftovers(prefix, kind)).toEqual([]);
    });

    afterAll(async () => {
      if (!driver) return;
      await driver.reap(prefix);
      await driver.close();
    });

    it('boots the ok guest, samples disk activity and sees it power off by itself', { timeout: TEST_TIMEOUT_MS }, async () => {
      const { spec, disk } = await guestSpec(guest, nextName('boot'), { mode: 'ok', sizeMb: 8, tag: `boot-${kind}` });
      const domain = await driver.define(spec);
      try {
        expect(await domain.isOff()).toBe(false);
        const started = Date.now();
        await domain.start();
        measured[`${kind}: start() returned after`] = `${((Date.now() - started) / 1000).toFixed(2)} s`;
        let maxDisk = 0;
        await waitFor(
          'power-off',
          async () => {
            maxDisk = Math.max(maxDisk, (await domain.activity()).diskRequests);
            return domain.isOff();
          },
          BOOT_TIMEOUT_MS,
          200,
        );
        measured[`${kind}: start → power-off seen (ok guest, 8 MiB)`] = `${((Date.now() - started) / 1000).toFixed(1)} s`;
        expect(maxDisk).toBeGreaterThan(0);
        expect(readFileSync(spec.serialLog, 'utf8')).toContain(`${GUEST_DONE_MARKER} wrote 8 MiB`);
        const head = (await readFile(disk)).subarray(0, 64).toString('latin1');
        expect(head.startsWith(`${GUEST_DISK_MARKER} boot-${kind}\n`)).toBe(true);
      } finally {
        await domain.destroy();
        await domain.destroy(); // twice is fine
      }
      expect(await domain.isOff()).toBe(true);
    });

    it('refuses a second domain with a name that is running', { timeout: TEST_TIMEOUT_MS }, async () => {
      const { spec } = await guestSpec(guest, nextName('twice'), { mode: 'stall' });
      const first = await driver.define(spec);
      try {
        await first.start();
        const second = driver.define(spec).then((d) => d.start());
        await expect(second).rejects.toMatchObject({ code: 'domain_exists' });
      } finally {
        await first.destroy();
      }
    });

    it(`detects a stall within ${STALL_SECONDS} + 2 s of the last activity and rejects install_stalled with a screenshot and the console tail`, { timeout: TEST_TIMEOUT_MS }, async () => {
      const { spec } = await guestSpec(guest, nextName('stall'), { mode: 'stall' });
      const domain = await driver.define(spec);
      await domain.start();
      // Watch from the moment the guest went quiet: booting under TCG can take longer than the limit.
      await waitFor('the guest to stall', () => consoleHas(spec.serialLog, 'stalling without I/O'), BOOT_TIMEOUT_MS);
      let lastActivity = Date.now();
      let detectedAt = 0;
      const err = await expectInstallError(
        watchInstall(domain, {
          stallSeconds: STALL_SECONDS,
          deadline: Date.now() + 120_000,
          artifactsDir: artifacts(),
          serialLog: spec.serialLog,
          onActivity: (_s: ActivitySample, at: number) => (lastActivity = at),
          log: (line) => {
            if (line.includes(': install_stalled after ')) detectedAt = Date.now();
          },
        }),
      );
      const rejectedAt = Date.now();
      const detection = (detectedAt - lastActivity) / 1000;
      const rejection = (rejectedAt - lastActivity) / 1000;
      measured[`${kind}: stall limit ${STALL_SECONDS} s: detected / rejected (after screenshot + destroy), since the last activity`] = `${detection.toFixed(2)} s / ${rejection.toFixed(2)} s`;
      expect(err.code).toBe('install_stalled');
      expect(detection).toBeGreaterThanOrEqual(STALL_SECONDS);
      expect(detection).toBeLessThan(STALL_SECONDS + 2);
      expect(err.details.idleSeconds).toBeGreaterThanOrEqual(STALL_SECONDS);
      expect(err.details.idleSeconds).toBeLessThan(STALL_SECONDS + 2);
      // Rejection waits for the screenshot and the domain's destruction (libvirt's destroy takes up to ~2 s on a loaded host).
      expect(rejection).toBeLessThan(STALL_SECONDS + 2 + CLEANUP_ALLOWANCE_S);
      expect(err.message).toBe(`no disk or network activity for ${STALL_SECONDS} s; last console line: "testguest: stalling without I/O"`);

      // The failure report: a real PNG and the console tail, in the artifacts directory and the details.
      expect(err.details.screenshot).toBeDefined();
      const png = readFileSync(err.details.screenshot!);
      expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
      expect(err.details.serialTail).toContain('testguest: stalling without I/O');
      expect(readFileSync(err.details.serialTailFile!, 'utf8')).toBe(err.details.serialTail);
      expect(err.details.lastConsoleLine).toBe('testguest: stalling without I/O');
      expect(await domain.isOff()).toBe(true);
    });

    it('sees disk requests rise in a guest that keeps writing, and rejects timeout at the deadline without calling it stalled', { timeout: TEST_TIMEOUT_MS }, async () => {
      const { spec, dir } = await guestSpec(guest, nextName('endless'), { mode: 'busy' });
      const domain = await driver.define(spec);
      await domain.start();
      let risen = 0;
      try {
        await waitFor('the busy guest to write', () => consoleHas(spec.serialLog, 'writing to /dev/vda'), BOOT_TIMEOUT_MS);
        const a = await domain.activity();
        expect(a.diskRequests).toBeGreaterThan(0);
        // A loaded host may leave the TCG guest a few seconds without a write; it must write again.
        await waitFor('the disk requests to rise', async () => (risen = (await domain.activity()).diskRequests) > a.diskRequests, 30_000, 250);
        const shot = join(dir, 'screen.png');
        await domain.screenshot(shot);
        expect(readFileSync(shot).subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
      } catch (e) {
        await domain.destroy().catch(() => {});
        throw e;
      }

      const deadline = Date.now() + 8000;
      let activities = 0;
      let detectedAt = 0;
      const err = await expectInstallError(
        watchInstall(domain, {
          stallSeconds: 3,
          deadline,
          artifactsDir: artifacts(),
          serialLog: spec.serialLog,
          onActivity: () => activities++,
          log: (line) => {
            if (line.includes(': timeout after ')) detectedAt = Date.now();
          },
        }),
      );
      const late = (detectedAt - deadline) / 1000;
      const rejectedLate = (Date.now() - deadline) / 1000;
      measured[`${kind}: deadline: detected / rejected (after screenshot + destroy) after it`] = `${late.toFixed(2)} s / ${rejectedLate.toFixed(2)} s`;
      expect(err.code).toBe('timeout');
      expect(late).toBeGreaterThanOrEqual(0);
      expect(late).toBeLessThan(1);
      expect(rejectedLate).toBeLessThan(1 + CLEANUP_ALLOWANCE_S);
      expect(activities).toBeGreaterThan(3);
      expect(err.details.diskRequests).toBeGreaterThan(risen);
      expect(err.details.lastConsoleLine).toBe('testguest: writing to /dev/vda forever');
      expect(readFileSync(err.details.screenshot!).subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
      expect(await domain.isOff()).toBe(true);
    });

    it('rejects cancelled when aborted mid-install, and nothing of the guest remains within 5 s', { timeout: TEST_TIMEOUT_MS }, async () => {
      const { spec } = await guestSpec(guest, nextName('cancel'), { mode: 'busy' });
      const domain = await driver.define(spec);
      await domain.start();
      const controller = new AbortController();
      const watch = expectInstallError(
        watchInstall(domain, { stallSeconds: 60, deadline: Date.now() + 60_000, signal: controller.signal, artifactsDir: artifacts(), serialLog: spec.serialLog }),
      );
      await new Promise((r) => setTimeout(r, 3000));
      const abortedAt = Date.now();
      controller.abort();
      const err = await watch;
      expect(err.code).toBe('cancelled');
      expect(err.message).toMatch(/^the install was cancelled after \d+(\.\d)? s; /);
      await waitFor('the guest to be gone', () => leftovers(spec.name, kind).length === 0, 5000 - (Date.now() - abortedAt), 50);
      const goneMs = Date.now() - abortedAt;
      measured[`${kind}: abort → rejected and no process/domain left`] = `${(goneMs / 1000).toFixed(2)} s`;
      expect(goneMs).toBeLessThan(5000);
    });

    it('watchInstall resolves for two ok guests running side by side without collision', { timeout: TEST_TIMEOUT_MS }, async () => {
      const [a, b] = await Promise.all([
        guestSpec(guest, nextName('pair'), { mode: 'ok', sizeMb: 4, tag: `left-${kind}` }),
        guestSpec(guest, nextName('pair'), { mode: 'ok', sizeMb: 4, tag: `right-${kind}` }),
      ]);
      const domains = await Promise.all([driver.define(a.spec), driver.define(b.spec)]);
      await Promise.all(domains.map((d) => d.start()));
      // A stall limit longer than a loaded TCG boot (no disk I/O until the kernel probes virtio).
      const watch = (d: Domain, serialLog: string) =>
        watchInstall(d, { stallSeconds: 120, deadline: Date.now() + BOOT_TIMEOUT_MS, artifactsDir: artifacts(), serialLog });
      const results = await Promise.all([watch(domains[0], a.spec.serialLog), watch(domains[1], b.spec.serialLog)]);
      measured[`${kind}: two ok guests at once, watchInstall resolved after`] = results.map((r) => `${(r.elapsedMs / 1000).toFixed(1)} s`).join(', ');
      for (const d of domains) expect(await d.isOff()).toBe(true);
      for (const [g, tag] of [
        [a, `left-${kind}`],
        [b, `right-${kind}`],
      ] as const) {
        expect(readFileSync(g.spec.serialLog, 'utf8')).toContain(GUEST_DONE_MARKER);
        expect((await readFile(g.disk)).subarray(0, 64).toString('latin1')).toContain(`${GUEST_DISK_MARKER} ${tag}\n`);
      }
    });

    it('reap(prefix) removes a leftover guest started outside the driver (a crashed daemon)', { timeout: TEST_TIMEOUT_MS }, async () => {
      const { spec, dir } = await guestSpec(guest, nextName('orphan'), { mode: 'stall' });
      // Started behind the driver's back, as a previous daemon would have left it.
      if (kind === 'qemu') {
        const runDir = join(dir, 'orphan-run');
        await mkdir(runDir, { recursive: true });
        const child = spawn('qemu-system-x86_64', qemuCommandLine(spec, { qmpSocket: join(runDir, 'q.sock') }), { detached: true, stdio: 'ignore' });
        child.unref();
      } else {
        const xmlFile = join(dir, 'orphan.xml');
        writeFileSync(xmlFile, domainXml(spec, { emulator: '/usr/bin/qemu-system-x86_64' }));
        const r = await new Promise<number | null>((resolve) =>
          spawn('virsh', ['-q', '-c', LIBVIRT_URI, 'create', xmlFile], { stdio: 'ignore' }).once('close', resolve),
        );
        expect(r).toBe(0);
      }
      await waitFor('the orphan to run', () => leftovers(spec.name, kind).length > 0, 10_000);

      // A fresh driver, as at daemon start.
      const fresh = await openDriver(kind, join(guest.dir, `${kind}-run`));
      try {
        const reaped = await fresh.reap(prefix);
        expect(reaped).toEqual([spec.name]);
        expect(leftovers(prefix, kind)).toEqual([]);
        expect(await fresh.reap(prefix)).toEqual([]);
      } finally {
        await fresh.close();
      }
      if (kind === 'libvirt') expect(libvirtDomainNames()).not.toContain(spec.name);
    });

    if (kind === 'qemu') {
      it('counts user-network traffic above the noise floor as activity (qemu: filter-dump capture)', { timeout: TEST_TIMEOUT_MS }, async () => {
        const { spec } = await guestSpec(guest, nextName('net'), { mode: 'net' }, { network: 'user' });
        const domain = await driver.define(spec);
        await domain.start();
        await waitFor('the guest to ping', () => consoleHas(spec.serialLog, 'pinging'), BOOT_TIMEOUT_MS);
        const deadline = Date.now() + 7000;
        const err = await expectInstallError(watchInstall(domain, { stallSeconds: 3, deadline, artifactsDir: artifacts(), serialLog: spec.serialLog }));
        expect(err.code).toBe('timeout');
        expect(err.details.netBytes).toBeGreaterThan(20_000);
      });
    }
  });
});
