/**
 * The installer strategy through the REST API, on both hypervisor drivers:
 * a real daemon builds TestInstaller images, whose "installer" is the busybox
 * test guest (Debian kernel + initramfs) fetched from a local HTTP mirror in
 * the Debian netboot layout, with its answer file appended to the initrd.
 */
import { createServer, type Server } from 'node:http';
import { copyFileSync, createReadStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listQemuProcesses } from '../../src/hypervisor/processes.js';
import { buildTestGuest, GUEST_DISK_MARKER, removeTestGuest } from '../guest/build-guest.js';
import { daemonHome, getImage, postBase, startDaemon, waitPhase, waitStatus, type Daemon } from '../daemon/helpers.js';
import { leftovers, waitFor, type DriverKind } from '../hypervisor/helpers.js';

/**
 * Long enough for the guest to boot and print under TCG on a loaded host
 * before it goes quiet: its kernel is loaded by qemu, so nothing counts as
 * activity until it runs. A full suite run saw the libvirt guest take 29 s
 * to boot and power off, and a 20 s window fire before it had printed.
 */
const STALL_SECONDS = 45;
const BUILD_MS = 120_000;
const NETBOOT = 'debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64';

let mirror: Server;
let mirrorUrl: string;
let isoDir: string;

beforeAll(async () => {
  const guest = await buildTestGuest();
  // The same installer on a Debian-layout ISO, with a good and a wrong sha256 file.
  isoDir = mkdtempSync(join(tmpdir(), 'if-installer-iso-'));
  mkdirSync(join(isoDir, 'tree', 'install.amd'), { recursive: true });
  copyFileSync(guest.kernel, join(isoDir, 'tree', 'install.amd', 'vmlinuz'));
  copyFileSync(guest.initrd, join(isoDir, 'tree', 'install.amd', 'initrd.gz'));
  const iso = join(isoDir, 'testinstaller.iso');
  const made = spawnSync('xorriso', ['-as', 'mkisofs', '-quiet', '-o', iso, '-V', 'TESTINSTALLER', '-J', '-R', join(isoDir, 'tree')], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(made.stderr);
  const sha256 = createHash('sha256').update(readFileSync(iso)).digest('hex');
  writeFileSync(join(isoDir, 'SHA256SUMS'), `${sha256}  testinstaller.iso\n`);
  writeFileSync(join(isoDir, 'BAD-SHA256SUMS'), `${'0'.repeat(64)}  testinstaller.iso\n`);
  const files: Record<string, string> = {
    [`/${NETBOOT}/linux`]: guest.kernel,
    [`/${NETBOOT}/initrd.gz`]: guest.initrd,
    '/iso/testinstaller.iso': iso,
    '/iso/SHA256SUMS': join(isoDir, 'SHA256SUMS'),
    '/iso/BAD-SHA256SUMS': join(isoDir, 'BAD-SHA256SUMS'),
  };
  mirror = createServer((req, res) => {
    const file = files[new URL(req.url ?? '/', 'http://x').pathname];
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': statSync(file).size });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => mirror.listen(0, '127.0.0.1', r));
  mirrorUrl = `http://127.0.0.1:${(mirror.address() as { port: number }).port}/debian/`;
});

afterAll(async () => {
  await new Promise((r) => mirror?.close(r));
  rmSync(isoDir, { recursive: true, force: true });
  await removeTestGuest();
});

function template(mode: 'ok' | 'stall' | 'busy'): string {
  return `<template><name>installer-${mode}</name><os><name>TestInstaller</name><version>${mode}</version><arch>x86_64</arch><install type="url"><url>${mirrorUrl}</url></install></os><disk><size>64MiB</size></disk></template>`;
}

function isoTemplate(sums: 'SHA256SUMS' | 'BAD-SHA256SUMS'): string {
  const base = mirrorUrl.replace(/debian\/$/, 'iso/');
  return `<template><name>installer-iso</name><os><name>TestInstaller</name><version>ok</version><arch>x86_64</arch><install type="iso"><iso>${base}testinstaller.iso</iso><sha256sum>${base}${sums}</sha256sum></install></os><disk><size>64MiB</size></disk></template>`;
}

const guestsOf = (id: string, kind: DriverKind) => leftovers(`imagefactory-${id}`, kind);

/** The first bytes of the image body, as raw disk bytes. */
function diskHead(body: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'if-installer-test-'));
  try {
    const raw = join(dir, 'disk.raw');
    const r = spawnSync('qemu-img', ['convert', '-O', 'raw', body, raw], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    return readFileSync(raw).subarray(0, 200).toString('latin1');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// The two drivers run side by side, each one's tests in turn: ten TCG guests at once would starve each other's boots.
describe.concurrent.each<DriverKind>(['qemu', 'libvirt'])('installs on the %s driver, over REST', (kind) => {
  describe.sequential('each in turn', () => {
    async function setUp(extra: Record<string, unknown> = {}) {
      const home = daemonHome({ hypervisor: kind, accel: 'tcg', max_concurrent_local_sessions: 4, ...extra });
      const daemon = await startDaemon(home.config);
      return { home, daemon };
    }

    /** Runs `fn` against a fresh daemon, then checks no temp file of its builds is left, and removes it all. */
    async function withDaemon(extra: Record<string, unknown>, fn: (d: { home: ReturnType<typeof daemonHome>; daemon: Daemon }) => Promise<void>) {
      const { home, daemon } = await setUp(extra);
      try {
        await fn({ home, daemon });
        expect(home.leftovers()).toEqual([]);
      } finally {
        await daemon.stop();
        home.remove();
      }
    }

    it(
      'installs from the mirror with the answer file, two builds side by side, each onto its own disk',
      async () => {
        await withDaemon({}, async ({ home, daemon }) => {
          const ids = await Promise.all(
            ['alpha', 'beta'].map(async (tag) => {
              const posted = await postBase(daemon.url, template('ok'), { tag });
              expect(posted.status).toBe(202);
              return posted.body.base_image.id as string;
            }),
          );
          const done = await Promise.all(ids.map((id) => waitStatus(daemon.url, id, ['COMPLETE', 'FAILED'], BUILD_MS)));
          expect(done.map((d) => [d.status, d.status_detail.error])).toEqual([
            ['COMPLETE', null],
            ['COMPLETE', null],
          ]);
          expect(diskHead(join(home.dirs.storage, `${ids[0]}.body`))).toContain(`${GUEST_DISK_MARKER} alpha`);
          expect(diskHead(join(home.dirs.storage, `${ids[1]}.body`))).toContain(`${GUEST_DISK_MARKER} beta`);
          const log = await (await fetch(`${daemon.url}/imagefactory/base_images/${ids[0]}/log`)).text();
          expect(log).toContain(`installer: ${mirrorUrl}dists/bookworm/`);
          expect(log).toContain('testguest: mode=ok');
          for (const id of ids) expect(guestsOf(id, kind)).toEqual([]);
        });
      },
      BUILD_MS * 2,
    );

    it(
      'installs from an ISO verified against its sha256 file, attached as the CD-ROM',
      async () => {
        await withDaemon({}, async ({ home, daemon }) => {
          const id = (await postBase(daemon.url, isoTemplate('SHA256SUMS'), { tag: 'from-iso' })).body.base_image.id as string;
          const image = await waitStatus(daemon.url, id, ['COMPLETE', 'FAILED'], BUILD_MS);
          expect([image.status, image.status_detail.error]).toEqual(['COMPLETE', null]);
          expect(diskHead(join(home.dirs.storage, `${id}.body`))).toContain(`${GUEST_DISK_MARKER} from-iso`);
          const log = await (await fetch(`${daemon.url}/imagefactory/base_images/${id}/log`)).text();
          expect(log).toContain('installer: /install.amd/vmlinuz on http://');
          expect(log).toContain('(sha256 verified)');
        });
      },
      BUILD_MS,
    );

    it(
      `fails a stalled installer with install_stalled within ${STALL_SECONDS} + 2 s of its last activity, with a screenshot and the console tail`,
      async () => {
        await withDaemon({ install_stall_seconds: STALL_SECONDS }, async ({ home, daemon }) => {
          const id = (await postBase(daemon.url, template('stall'))).body.base_image.id as string;
          const image = await waitStatus(daemon.url, id, ['COMPLETE', 'FAILED'], BUILD_MS);
          expect(image.status_detail.error_code).toBe('install_stalled');
          expect(image.status_detail.error).toContain(`no disk or network activity for ${STALL_SECONDS} s`);
          const details = image.status_detail.error_details;
          expect(details.idleSeconds).toBeGreaterThanOrEqual(STALL_SECONDS);
          expect(details.idleSeconds).toBeLessThanOrEqual(STALL_SECONDS + 2);
          expect(details.serialTail).toContain('testguest: stalling without I/O');
          expect(readFileSync(details.serialTailFile, 'utf8')).toBe(details.serialTail);
          // Kept with the build in storage (not in its workdir, which is gone): a real PNG.
          expect(details.screenshot).toBe(join(home.dirs.storage, 'artifacts', id, `imagefactory-${id}-install.install_stalled.png`));
          expect(readFileSync(details.screenshot).subarray(1, 4).toString('latin1')).toBe('PNG');
          expect(guestsOf(id, kind)).toEqual([]);
        });
      },
      BUILD_MS,
    );

    it(
      'fails a busy installer that never finishes with timeout at the phase limit',
      async () => {
        await withDaemon({ phase_timeouts: { installing: 25 } }, async ({ home, daemon }) => {
          const id = (await postBase(daemon.url, template('busy'))).body.base_image.id as string;
          const image = await waitStatus(daemon.url, id, ['COMPLETE', 'FAILED'], BUILD_MS);
          expect(image.status_detail.error_code).toBe('timeout');
          expect(guestsOf(id, kind)).toEqual([]);
        });
      },
      BUILD_MS,
    );

    it(
      'cancels mid-install: CANCELLED, and no domain or qemu process is left within 5 s',
      async () => {
        await withDaemon({}, async ({ home, daemon }) => {
          const id = (await postBase(daemon.url, template('busy'))).body.base_image.id as string;
          await waitPhase(daemon.url, id, 'installing', BUILD_MS);
          await waitFor('the installer guest to run', () => guestsOf(id, kind).length > 0, BUILD_MS);
          const asked = Date.now();
          const res = await fetch(`${daemon.url}/imagefactory/base_images/${id}/cancel`, { method: 'POST' });
          expect(res.status).toBeLessThan(300);
          await waitFor('no guest left', () => guestsOf(id, kind).length === 0, 5000);
          expect(Date.now() - asked).toBeLessThanOrEqual(5000);
          expect((await waitStatus(daemon.url, id, ['CANCELLED', 'FAILED', 'COMPLETE'], 30_000)).status).toBe('CANCELLED');
        });
      },
      BUILD_MS,
    );

    it(
      'reaps the guest of a daemon killed mid-install at the next start, then installs again to COMPLETE',
      async () => {
        const { home, daemon } = await setUp();
        let second: Daemon | undefined;
        try {
          const id = (await postBase(daemon.url, template('ok'), { size_mb: 48 })).body.base_image.id as string;
          await waitPhase(daemon.url, id, 'installing', BUILD_MS);
          await waitFor('the installer guest to run', () => guestsOf(id, kind).length > 0, BUILD_MS);
          await waitFor('its qemu process', () => listQemuProcesses().some((p) => p.name.startsWith(`imagefactory-${id}`)), 30_000);
          const orphans = listQemuProcesses().filter((p) => p.name.startsWith(`imagefactory-${id}`)).map((p) => p.pid);
          expect(orphans.length).toBe(1);
          await daemon.stop('SIGKILL');
          expect(listQemuProcesses().map((p) => p.pid)).toContain(orphans[0]); // the guest outlived its daemon

          second = await startDaemon(home.config);
          await waitFor('the orphan to be reaped', () => !listQemuProcesses().some((p) => p.pid === orphans[0]), 10_000);
          const image = await waitStatus(second.url, id, ['COMPLETE', 'FAILED'], BUILD_MS);
          expect([image.status, image.status_detail.error]).toEqual(['COMPLETE', null]);
          const log = await (await fetch(`${second.url}/imagefactory/base_images/${id}/log`)).text();
          expect(log).toMatch(/daemon restarted: resuming in state installing; reaped .*imagefactory-/);
          expect(guestsOf(id, kind)).toEqual([]);
        } finally {
          await second?.stop();
          await daemon.stop();
          home.remove();
        }
      },
      BUILD_MS * 2,
    );
  });
});

it('refuses a template with commands on the installer strategy, naming the strategy to use', async () => {
  const home = daemonHome();
  const daemon = await startDaemon(home.config);
  try {
    const tdl = template('ok').replace('</template>', '<commands><command name="x">true</command></commands></template>');
    const id = (await postBase(daemon.url, tdl)).body.base_image.id as string;
    const image = await waitStatus(daemon.url, id, ['COMPLETE', 'FAILED'], 30_000);
    expect([image.status_detail.error_code, image.status_detail.error]).toEqual([
      'customization_unavailable',
      'the installer strategy does not run template commands or write files yet; use install_strategy "bootstrap" for such templates',
    ]);
    expect(home.leftovers()).toEqual([]);
  } finally {
    await daemon.stop();
    home.remove();
  }
});

it('fails an ISO install whose checksum does not match, before booting anything, and caches nothing', async () => {
  const home = daemonHome();
  const daemon = await startDaemon(home.config);
  try {
    const id = (await postBase(daemon.url, isoTemplate('BAD-SHA256SUMS'))).body.base_image.id as string;
    const image = await waitStatus(daemon.url, id, ['COMPLETE', 'FAILED'], 30_000);
    expect(image.status_detail.error_code).toBe('checksum_mismatch');
    expect(image.status_detail.error).toMatch(/^sha256 of testinstaller\.iso is [0-9a-f]{64}, but .*BAD-SHA256SUMS says 0{64}/);
    const log = await (await fetch(`${daemon.url}/imagefactory/base_images/${id}/log`)).text();
    expect(log).not.toContain('starting on');
    expect(readdirSync(join(home.root, 'media')).filter((f) => !f.startsWith('.'))).toEqual([]);
    expect(home.leftovers()).toEqual([]);
  } finally {
    await daemon.stop();
    home.remove();
  }
});
