import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootConsole } from '../../bench/serial-console.js';
import { getImage, postBase, waitStatus } from '../daemon/helpers.js';
import { BUILD_MS, daemonHome, expectNothingLeftOf, startDaemon, type Daemon } from './faults-helpers.js';

/**
 * Boot checkpoints (docs/debian.md) with real Debian builds on a daemon
 * with the qemu driver: the first build saves its booted guest; a build
 * with only its commands changed resumes it, and its image boots with the
 * new command's work in it; a checkpoint of another hypervisor is not
 * resumed but replaced; cancelling while a checkpoint is saved, and while
 * a resumed guest works, leaves nothing behind and the checkpoint intact.
 */

const ROOTPW = 'checkpoint-Secret-pw';
const withCommands = (commands: string) => `<template>
  <name>boot-checkpoint</name>
  <os>
    <name>Debian</name><version>12</version><arch>x86_64</arch>
    <install type="url"><url>http://deb.debian.org/debian</url></install>
    <rootpw>${ROOTPW}</rootpw>
  </os>
  <files><file name="/etc/e2e/hello.txt">hello</file></files>
  <commands>${commands}</commands>
  <disk><size>2GiB</size></disk>
</template>`;
const FIRST = withCommands('<command name="first">echo first &gt; /etc/e2e/order</command>');
const CHANGED = withCommands('<command name="first">echo first &gt; /etc/e2e/order; echo changed &gt; /etc/e2e/changed; echo "clock=$(date -u +%s)"</command>');
const SLOW = withCommands('<command name="slow">echo slow-started; sleep 600</command>');

type Image = Record<string, any>;
const execFileAsync = promisify(execFile);
let home: ReturnType<typeof daemonHome>;
let daemon: Daemon;

beforeAll(async () => {
  home = daemonHome({ hypervisor: 'qemu' });
  daemon = await startDaemon(home.config);
});
afterAll(async () => {
  // A daemon that died of a build's trouble is a failure of its own, with its last words.
  expect([daemon?.proc.exitCode ?? null, daemon?.proc.signalCode ?? null], daemon?.output().slice(-4000)).toEqual([null, null]);
  await daemon?.stop();
  try {
    if (home) expect(home.leftovers()).toEqual([]);
  } finally {
    home?.remove();
  }
});

async function build(template: string): Promise<{ id: string; image: Image; log: string }> {
  const posted = await postBase(daemon.url, template);
  expect(posted.status).toBe(202);
  const id = posted.body.base_image.id as string;
  const image = await waitStatus(daemon.url, id, ['COMPLETE', 'FAILED', 'CANCELLED'], BUILD_MS);
  const log = await (await fetch(`${daemon.url}/imagefactory/base_images/${id}/log`)).text();
  expect(image.status_detail.error, log.slice(-3000)).toBeNull();
  expect(image.status).toBe('COMPLETE');
  await expectNothingLeftOf(id, home, daemon);
  return { id, image, log };
}

/** The template's one checkpoint in the daemon's tree cache. */
function checkpoint() {
  const trees = join(home.root, 'trees');
  const found = readdirSync(trees)
    .filter((t) => /^[0-9a-f]{64}$/.test(t) && existsSync(join(trees, t, 'boot')))
    .flatMap((t) => readdirSync(join(trees, t, 'boot')).map((b) => join(trees, t, 'boot', b)));
  expect(found).toHaveLength(1);
  const dir = found[0]!;
  // Not spawnSync: a test process blocked for seconds would send its next request on a keep-alive connection the daemon has closed meanwhile.
  return { dir, meta: join(dir, 'meta.json'), digests: async () => (await execFileAsync('sha256sum', ['disk.raw', 'booted.qcow2', 'boot.state'], { cwd: dir })).stdout };
}

async function cancelWhen(template: string, moment: (image: Image) => boolean): Promise<void> {
  const posted = await postBase(daemon.url, template);
  const id = posted.body.base_image.id as string;
  for (const end = Date.now() + BUILD_MS; ; ) {
    const image = await getImage(daemon.url, id);
    if (moment(image)) break;
    if (['COMPLETE', 'FAILED', 'CANCELLED'].includes(image.status) || Date.now() > end) throw new Error(`image ${id} is ${image.status} (${image.status_detail.activity}), the moment never came`);
    await new Promise((r) => setTimeout(r, 40));
  }
  expect((await fetch(`${daemon.url}/imagefactory/base_images/${id}/cancel`, { method: 'POST' })).status).toBe(202);
  const image = await waitStatus(daemon.url, id, ['CANCELLED', 'FAILED', 'COMPLETE'], 60_000);
  expect([image.status, image.status_detail.error_code]).toEqual(['CANCELLED', 'cancelled']);
  await expectNothingLeftOf(id, home, daemon);
}

describe('boot checkpoints of real Debian builds', () => {
  let first: { id: string; image: Image; log: string };

  it(
    'cancelling while the booted guest is being saved keeps no checkpoint and leaves nothing; the next build saves one',
    async () => {
      await cancelWhen(FIRST, (i) => i.status_detail.activity === 'Saving the booted guest as a checkpoint for later builds');
      first = await build(FIRST);
      expect(first.image.properties).toMatchObject({ boot_check: 'multi-user', tree_cache: 'hit', boot_checkpoint: 'saved' });
      expect(first.log).toMatch(/boot checkpoint: kept the booted guest as [0-9a-f]{12} with tree [0-9a-f]{12} \(\d+ MB\)/);
      expect(JSON.parse(readFileSync(checkpoint().meta, 'utf8')).identity).toMatch(/^qemu \S+ (tcg|kvm) machine pc$/);
    },
    BUILD_MS,
  );

  it(
    'a rebuild with only its commands changed resumes the booted guest: no bootstrap, no assembly, no boot; the clock is right; the checkpoint unchanged; the image boots with the new work',
    async () => {
      const before = await checkpoint().digests();
      const submitted = Math.floor(Date.now() / 1000);
      const changed = await build(CHANGED);
      expect(changed.image.properties).toMatchObject({ boot_check: 'multi-user', tree_cache: 'hit', boot_checkpoint: 'resumed', boot_seconds: first.image.properties.boot_seconds });
      expect(changed.log).toMatch(/boot checkpoint: hit [0-9a-f]{12}; the tree, the disk and the boot are reused/);
      expect(changed.log).not.toMatch(/mmdebstrap|assembling the disk|guest: IFMARK booted/);
      // The guest woke with the clock of the checkpoint; the job set it to the host's.
      const clock = Number(/guest: clock=(\d+)/.exec(changed.log)?.[1]);
      expect(clock).toBeGreaterThanOrEqual(submitted - 5);
      expect(clock).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 5);
      expect(await checkpoint().digests()).toBe(before);

      const console = bootConsole(`${home.dirs.storage}/${changed.id}.body`, { tag: `checkpoint-${changed.id}` });
      try {
        await console.login(ROOTPW, 240_000);
        expect(await console.run('cat /etc/e2e/order /etc/e2e/changed /etc/e2e/hello.txt')).toBe('first\nchanged\nhello');
        await console.run('systemctl is-system-running --wait >/dev/null', 120_000);
        expect(await console.run('test -s /etc/machine-id && test -e /etc/ssh/ssh_host_ed25519_key && echo fresh')).toBe('fresh\n');
        expect(await console.run('ls /usr/local/sbin/imagefactory-customize 2>&1 | grep -c "No such file"')).toBe('1\n');
      } finally {
        await console.close();
      }
    },
    BUILD_MS,
  );

  it(
    'cancelling a resumed guest while it works leaves nothing behind and the checkpoint as it was',
    async () => {
      const before = await checkpoint().digests();
      await cancelWhen(SLOW, (i) => i.status_detail.activity === 'In the guest: command slow');
      expect(await checkpoint().digests()).toBe(before);
    },
    BUILD_MS,
  );

  it(
    'boots afresh when the checkpoint was taken on another hypervisor, and keeps a new one in its place',
    async () => {
      const { meta } = checkpoint();
      const real = JSON.parse(readFileSync(meta, 'utf8'));
      writeFileSync(meta, JSON.stringify({ ...real, identity: 'qemu 0.1 kvm machine pc' }));
      const other = await build(withCommands('<command name="third">echo third build</command>'));
      expect(other.image.properties).toMatchObject({ tree_cache: 'hit', boot_checkpoint: 'saved' });
      expect(other.log).toContain('boot checkpoint: not resumed (the checkpoint was taken on qemu 0.1 kvm machine pc; this guest would run on qemu ');
      expect(other.log).toContain('guest: third build');
      expect(JSON.parse(readFileSync(checkpoint().meta, 'utf8')).identity).toBe(real.identity);
    },
    BUILD_MS,
  );
});
