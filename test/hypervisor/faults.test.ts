/**
 * The emulator dying under a guest (killed, crashed, stopped by a signal) is
 * `guest_crashed`, never a clean power-off. libvirtd restarting is in
 * libvirtd-restart.test.ts, which runs alone.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InstallError } from '../../src/hypervisor/errors.js';
import { listQemuProcesses } from '../../src/hypervisor/processes.js';
import type { HypervisorDriver } from '../../src/hypervisor/types.js';
import { watchInstall } from '../../src/hypervisor/watchdog.js';
import { guestSpec, leftovers, openDriver, testPrefix, waitForConsole, type DriverKind } from './helpers.js';
import { BOOT_TIMEOUT_MS, ensureLibvirtd, faultTestGuest, TEST_TIMEOUT_MS } from './libvirtd.js';

const guest = faultTestGuest();

/** The qemu process running a domain, whoever started it. */
function qemuPidOf(name: string): number {
  const p = listQemuProcesses().find((x) => x.name === name);
  if (!p) throw new Error(`no qemu process for ${name}`);
  return p.pid;
}

async function expectCrash(p: Promise<unknown>): Promise<InstallError> {
  const err = await p.then(
    () => new Error('the watch resolved: an unclean end passed for a power-off'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InstallError);
  expect((err as InstallError).code).toBe('guest_crashed');
  return err as InstallError;
}

describe.each<DriverKind>(['qemu', 'libvirt'])('an emulator that dies under a guest (%s driver)', (kind) => {
  const prefix = testPrefix(kind);
  let driver: HypervisorDriver;
  let n = 0;
  beforeAll(async () => {
    await ensureLibvirtd();
    driver = await openDriver(kind, join(guest.current.dir, `${kind}-faults-run`));
  });
  afterEach(() => expect(leftovers(prefix, kind)).toEqual([]));
  afterAll(async () => {
    await driver?.reap(prefix);
    await driver?.close();
  });

  // libvirt reads a SIGTERM'd qemu's SHUTDOWN event as a shutdown, so that case is the qemu driver's alone.
  const cases: [NodeJS.Signals, RegExp][] =
    kind === 'qemu'
      ? [
          ['SIGKILL', /^qemu was killed by SIGKILL/],
          ['SIGSEGV', /^qemu was killed by SIGSEGV/],
          ['SIGTERM', /^qemu shut down by host-signal/],
        ]
      : [
          ['SIGKILL', /^libvirt ended the domain with reason=crashed/],
          ['SIGSEGV', /^libvirt ended the domain with reason=crashed/],
        ];
  // One retry: once in about five full-suite runs on the loaded 2-core CI host, a busybox guest did not
  // come up within BOOT_TIMEOUT_MS (cause not found yet; the failure now carries the console tail).
  // What is tested starts after the boot, and the failed attempt's guest is destroyed before the retry.
  it.each(cases)('%s to qemu is guest_crashed, not a finished install', { timeout: TEST_TIMEOUT_MS, retry: 1 }, async (signal, ending) => {
    const { spec } = await guestSpec(guest.current, `${prefix}${signal.toLowerCase()}-${++n}`, { mode: 'busy' });
    const domain = await driver.define(spec);
    await domain.start();
    const watch = watchInstall(domain, { stallSeconds: 60, deadline: Date.now() + 150_000, artifactsDir: join(guest.current.dir, 'faults-artifacts'), serialLog: spec.serialLog, sampleMs: 200 });
    await waitForConsole(spec.serialLog, 'testguest: mode=busy', watch, BOOT_TIMEOUT_MS).catch(async (e: unknown) => {
      await domain.destroy().catch(() => {});
      await watch.catch(() => {});
      throw e;
    });
    process.kill(qemuPidOf(spec.name), signal);
    const err = await expectCrash(watch);
    expect(err.details.ending).toMatch(ending);
  });
});
