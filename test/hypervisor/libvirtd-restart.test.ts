/**
 * libvirtd restarting while a guest runs (a package upgrade does that) costs
 * one reconnection, and a libvirtd that stays away is `hypervisor_unavailable`
 * instead of a stall 300 s later.
 *
 * This stops the host's libvirtd, so it runs alone, after every other test
 * file (the `host-exclusive` project in vitest.config.ts): a test collecting
 * or using libvirt at that moment would fail for a reason of ours.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtDriver } from '../../src/hypervisor/libvirt.js';
import { watchInstall } from '../../src/hypervisor/watchdog.js';
import { consoleHas, guestSpec, leftovers, LIBVIRT_URI, testPrefix, waitForConsole } from './helpers.js';
import { BOOT_TIMEOUT_MS, ensureLibvirtd, faultTestGuest, stopLibvirtd, TEST_TIMEOUT_MS } from './libvirtd.js';

const guest = faultTestGuest();

describe('libvirtd restarting under a running guest', () => {
  const prefix = testPrefix('libvirt');
  let driver: LibvirtDriver;
  const log: string[] = [];
  beforeAll(async () => {
    await ensureLibvirtd();
    driver = await LibvirtDriver.connect({ uri: LIBVIRT_URI, reconnectTimeoutMs: 20_000, log: (l) => log.push(l) });
  });
  afterEach(async () => {
    await ensureLibvirtd();
    await driver.reap(prefix);
    expect(leftovers(prefix, 'libvirt')).toEqual([]);
  });
  afterAll(async () => driver?.close());

  it('reconnects once and sees the guest power off by itself', { timeout: TEST_TIMEOUT_MS }, async () => {
    const { spec } = await guestSpec(guest.current, `${prefix}restart`, { mode: 'ok', sizeMb: 48 });
    const domain = await driver.define(spec);
    await domain.start();
    const started = Date.now();
    const watch = watchInstall(domain, { stallSeconds: 60, deadline: Date.now() + 150_000, artifactsDir: join(guest.current.dir, 'restart-artifacts'), serialLog: spec.serialLog, sampleMs: 200 });
    await waitForConsole(spec.serialLog, 'testguest: mode=ok', watch, BOOT_TIMEOUT_MS);
    await stopLibvirtd();
    await ensureLibvirtd();
    const result = await watch;
    expect(result.elapsedMs).toBeLessThan(Date.now() - started + 1000);
    expect(consoleHas(spec.serialLog, 'IMAGEFACTORY-TESTGUEST-DONE')).toBe(true);
    expect(log.join('\n')).toMatch(/libvirt: the connection to .* is lost .*reconnecting\n(.*\n)*libvirt: reconnected to /);
  });

  it('fails hypervisor_unavailable when libvirtd stays away, within the reconnection time', { timeout: TEST_TIMEOUT_MS }, async () => {
    const short = await LibvirtDriver.connect({ uri: LIBVIRT_URI, reconnectTimeoutMs: 3000 });
    try {
      const { spec } = await guestSpec(guest.current, `${prefix}gone`, { mode: 'busy' });
      const domain = await short.define(spec);
      await domain.start();
      const watch = watchInstall(domain, { stallSeconds: 300, deadline: Date.now() + 150_000, artifactsDir: join(guest.current.dir, 'gone-artifacts'), serialLog: spec.serialLog, sampleMs: 200 });
      await waitForConsole(spec.serialLog, 'testguest: mode=busy', watch, BOOT_TIMEOUT_MS);
      await stopLibvirtd();
      const stopped = Date.now();
      const err = await watch.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'hypervisor_unavailable' });
      expect((err as Error).message).toMatch(/could not reconnect within 3 s/);
      expect(Date.now() - stopped).toBeLessThan(40_000);
    } finally {
      await ensureLibvirtd();
      await short.close();
    }
  });
});
