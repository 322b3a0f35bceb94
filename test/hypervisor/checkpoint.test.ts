/**
 * Checkpoints of a running guest with the qemu driver (what boot
 * checkpoints of Debian builds rest on, src/os/debian/boot-checkpoint.ts):
 * the busybox test guest, writing its disk forever, is paused and saved to
 * a file, runs on, and a second qemu resumes it from that file without
 * booting. A state that is not one, or one of another hypervisor identity,
 * is refused with `checkpoint_unusable` and leaves no process.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { guestRunner } from '../../src/engine/guests.js';
import { HypervisorError } from '../../src/hypervisor/errors.js';
import { QemuDriver } from '../../src/hypervisor/qemu.js';
import type { Domain } from '../../src/hypervisor/types.js';
import type { RunningGuest } from '../../src/os/plugin.js';
import { removeTestGuest, type TestGuest } from '../guest/build-guest.js';
import { file, tool, describeWithTools } from '../tools.js';
import { buildTestGuest, consoleHas, guestSpec, leftovers, testPrefix, waitFor } from './helpers.js';

const BOOT_TIMEOUT_MS = 90_000;
const TOOLS = [tool('qemu-system-x86_64'), file('/bin/busybox', 'busybox-static'), tool('cpio')];

describeWithTools(TOOLS, 'qemu guest checkpoints', () => {
  const prefix = testPrefix('qemu');
  let guest: TestGuest;
  let driver: QemuDriver;
  let n = 0;
  const domains: Domain[] = [];

  beforeAll(async () => {
    guest = await buildTestGuest();
    driver = new QemuDriver({ runDir: join(guest.dir, 'checkpoint-run') });
  });
  afterEach(async () => {
    for (const d of domains.splice(0)) await d.destroy();
    expect(leftovers(prefix, 'qemu')).toEqual([]);
  });
  afterAll(removeTestGuest);

  const requests = async (d: Domain) => (await d.activity()).diskRequests;

  it('pauses and saves a running guest, lets it run on, and a second qemu resumes it from the file without booting', async () => {
    const { spec, dir } = await guestSpec(guest, `${prefix}ck-${++n}`, { mode: 'busy' });
    const first = await driver.define(spec);
    domains.push(first);
    await first.start();
    await waitFor('the busy guest to write', () => consoleHas(spec.serialLog, 'writing to /dev/vda'), BOOT_TIMEOUT_MS);
    const state = join(dir, 'guest.state');

    await first.checkpoint!(state);
    const paused = await requests(first);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await requests(first)).toBe(paused);
    expect(readFileSync(state).length).toBeGreaterThan(1e6);
    await first.resume!();
    await waitFor('the saved guest to write on', async () => (await requests(first)) > paused, 30_000);
    await first.destroy();

    const restoredLog = join(dir, 'restored-console.log');
    const second = await driver.define({ ...spec, serialLog: restoredLog, restoreFrom: state });
    domains.push(second);
    await second.start();
    await waitFor('the resumed guest to write', async () => (await requests(second)) > 0, 30_000);
    // It resumed where it was: no boot, so nothing of the boot on its console.
    expect(existsSync(restoredLog) ? readFileSync(restoredLog, 'utf8') : '').not.toContain('testguest: mode=');
  }, 180_000);

  it('refuses a state file that is not one: checkpoint_unusable at start, nothing left running', async () => {
    const { spec, dir } = await guestSpec(guest, `${prefix}ck-${++n}`, { mode: 'stall' });
    const bogus = join(dir, 'bogus.state');
    await writeFile(bogus, 'not a qemu migration stream\n');
    const domain = await driver.define({ ...spec, restoreFrom: bogus });
    domains.push(domain);
    const err = await domain.start().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(HypervisorError);
    expect((err as HypervisorError).code).toBe('checkpoint_unusable');
    expect(leftovers(prefix, 'qemu')).toEqual([]);
  }, 60_000);

  it('the guest runner offers checkpoints with the identity of qemu and its accelerator, and refuses to restore one of another identity before starting anything', async () => {
    const { spec, dir } = await guestSpec(guest, `${prefix}ck-${++n}`, { mode: 'ok' });
    const identity = await driver.checkpointIdentity('tcg');
    expect(identity).toMatch(/^qemu \d+\.\d+\.\d+\S* tcg machine pc$/);
    const runner = guestRunner(
      { open: async () => ({ driver, accel: 'tcg' }) as never, reap: async () => [], close: async () => undefined },
      { storagePath: dir, stallSeconds: 60 },
    );
    const { name: _name, accel: _accel, ...asked } = spec;
    let offered: RunningGuest | null = null;
    const imageId = `${prefix.slice('imagefactory-'.length)}runner`;
    await runner.run(imageId, { ...asked, purpose: 'ok', onStarted: (g) => (offered = g) }, { signal: new AbortController().signal, deadline: Date.now() + BOOT_TIMEOUT_MS, log: () => undefined });
    expect(offered!.checkpoint).toBeTypeOf('function');

    const refused = await runner
      .run(imageId, { ...asked, purpose: 'refused', restore: { state: join(dir, 'none.state'), identity: 'qemu 1.0 kvm machine pc' } }, { signal: new AbortController().signal, deadline: Date.now() + 60_000, log: () => undefined })
      .then(() => null, (e: unknown) => e);
    expect((refused as HypervisorError).code).toBe('checkpoint_unusable');
    expect((refused as Error).message).toBe(`the checkpoint was taken on qemu 1.0 kvm machine pc; this guest would run on ${identity}`);
  }, 180_000);

  it('a guest given up while it runs is destroyed at once and its run rejects with the reason given; a cancel of the build stays a cancel', async () => {
    const { spec, dir } = await guestSpec(guest, `${prefix}ck-${++n}`, { mode: 'stall' });
    const runner = guestRunner(
      { open: async () => ({ driver, accel: 'tcg' }) as never, reap: async () => [], close: async () => undefined },
      { storagePath: dir, stallSeconds: 600 },
    );
    const { name: _name, accel: _accel, ...asked } = spec;
    const imageId = `${prefix.slice('imagefactory-'.length)}abandon`;
    const reason = new HypervisorError('checkpoint_unusable', 'given up by the test');
    const started = Date.now();
    const given = await runner
      .run(imageId, { ...asked, purpose: 'given-up', onStarted: (g) => setTimeout(() => g.abandon(reason), 1000) }, { signal: new AbortController().signal, deadline: Date.now() + BOOT_TIMEOUT_MS, log: () => undefined })
      .then(() => null, (e: unknown) => e);
    expect(given).toBe(reason);
    // Well before the stall watchdog (600 s) or the deadline.
    expect(Date.now() - started).toBeLessThan(BOOT_TIMEOUT_MS);
    expect(leftovers(prefix, 'qemu')).toEqual([]);

    const build = new AbortController();
    const cancelled = await runner
      .run(imageId, { ...asked, purpose: 'cancelled', onStarted: (g) => setTimeout(() => (build.abort(), g.abandon(reason)), 1000) }, { signal: build.signal, deadline: Date.now() + BOOT_TIMEOUT_MS, log: () => undefined })
      .then(() => null, (e: unknown) => e);
    expect((cancelled as { code?: string }).code).toBe('cancelled');
    expect(leftovers(prefix, 'qemu')).toEqual([]);
  }, 180_000);
});
