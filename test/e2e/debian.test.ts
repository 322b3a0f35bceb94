import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootConsole } from '../../bench/serial-console.js';
import { processesOfBuild } from '../../src/engine/reaper.js';
import { daemonHome, getImage, postBase, readEvents, startDaemon, type Daemon } from '../daemon/helpers.js';

/**
 * The product doing its job for real: Debian 12 templates posted to a real
 * daemon, built with mmdebstrap and one boot of the image under TCG, then
 * the finished image booted by its own bootloader and inspected from its
 * serial console as a person would. Two builds run side by side (one whose
 * command fails) to keep the CI run short, on a 200-character storage path.
 */

const ROOTPW = 'e2e-Secret-pw';
const GOOD = `<template>
  <name>e2e-debian</name>
  <description>imagefactory end-to-end test</description>
  <os>
    <name>Debian</name><version>12</version><arch>x86_64</arch>
    <install type="url"><url>http://deb.debian.org/debian</url></install>
    <rootpw>${ROOTPW}</rootpw>
  </os>
  <packages><package name="jq"/></packages>
  <files><file name="/etc/e2e/hello.txt">hello from a file</file></files>
  <commands>
    <command name="b-second" position="2">jq -n --arg f "$(cat /etc/e2e/hello.txt)" '{file: $f}' &gt; /etc/e2e/from-command.json; echo second &gt;&gt; /etc/e2e/order</command>
    <command name="a-first" position="1">echo first &gt; /etc/e2e/order; echo "visible in the build log"</command>
  </commands>
  <disk><size>2GiB</size></disk>
</template>`;

const FAILING = `<template>
  <name>e2e-debian-failing</name>
  <os>
    <name>Debian</name><version>12</version><arch>x86_64</arch>
    <install type="url"><url>http://deb.debian.org/debian</url></install>
    <rootpw>${ROOTPW}</rootpw>
  </os>
  <commands>
    <command name="will-fail">echo preparing; echo "something broke" &gt;&amp;2; exit 3</command>
    <command name="never-runs">touch /never</command>
  </commands>
  <disk><size>2GiB</size></disk>
</template>`;

const BUILD_MS = 25 * 60_000;

type Events = { event: string; data: any }[];
const final = (evs: Events) => evs.some((e) => e.event === 'transition' && ['complete', 'failed'].includes(e.data.transition?.to));

let home: ReturnType<typeof daemonHome>;
let daemon: Daemon;
let good: { id: string; events: Promise<Events> };
let failing: { id: string; events: Promise<Events> };

async function submit(template: string) {
  const posted = await postBase(daemon.url, template);
  expect(posted.status).toBe(202);
  const id = posted.body.base_image.id as string;
  return { id, events: readEvents(`${daemon.url}/imagefactory/events?id=${id}`, final) };
}

/** Nothing of this build is left: no process, no workdir or temp file, no mount. (The other build may still run.) */
function expectNothingLeft(id: string) {
  expect(processesOfBuild(id)).toEqual([]);
  expect(home.leftovers().filter((f) => f.includes(id))).toEqual([]);
  expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(home.root);
}

describe('Debian 12, end to end over REST', () => {
  beforeAll(async () => {
    // An operator's deep storage directory: nothing derived from it may hit a path limit (a unix socket's is 107 bytes).
    home = daemonHome({}, { storagePathLength: 200 });
    expect(home.dirs.storage.length).toBe(200);
    daemon = await startDaemon(home.config);
    good = await submit(GOOD);
    failing = await submit(FAILING);
  }, 60_000);

  afterAll(async () => {
    await daemon?.stop();
    try {
      if (home) expect(home.leftovers()).toEqual([]);
    } finally {
      home?.remove();
    }
  });

  it(
    'builds the template, with live progress, to a COMPLETE image and its ICICLE',
    async () => {
      const events = await good.events;
      const image = await getImage(daemon.url, good.id);
      expect(image.status_detail.error).toBeNull();
      expect(image).toMatchObject({ status: 'COMPLETE', percent_complete: 100 });
      const phases = events.filter((e) => e.event === 'transition').map((e) => e.data.transition.to);
      expect(phases.slice(-3)).toEqual(['customizing', 'snapshotting', 'complete']);
      const activities = events.filter((e) => e.event === 'progress').map((e) => e.data.image.activity as string);
      expect(activities).toContain('mmdebstrap: installing the kernel and the template packages');
      expect(activities).toContain("In the guest: command a-first");
      expect(image.properties).toMatchObject({ boot_check: 'multi-user', format: 'qcow2' });
      expect(image.properties.boot_seconds).toBeGreaterThan(0);
      expect(image.properties.customize_boot_seconds).toBeGreaterThan(image.properties.boot_seconds);

      expect(image.icicle).toMatch(/<package name="jq_[^"]+_amd64"\/?>/);
      expect(image.icicle).toMatch(/<package name="systemd_[^"]+_amd64"\/?>/);
      expect(image.icicle).toContain('<description>imagefactory end-to-end test</description>');

      const log = await (await fetch(`${daemon.url}/imagefactory/base_images/${good.id}/log`)).text();
      expect(log).toContain('guest: visible in the build log');
      expect(log).not.toContain(ROOTPW);
      expectNothingLeft(good.id);
    },
    BUILD_MS,
  );

  it(
    'boots the image by its own bootloader; the package, the file and the commands are in it, in order',
    async () => {
      await good.events;
      const body = `${home.dirs.storage}/${good.id}.body`;
      expect(readFileSync(body).subarray(0, 4).toString('latin1')).toBe('QFI\xfb');
      const console = bootConsole(body, { tag: `e2e-${good.id}` });
      try {
        await console.login(ROOTPW, 240_000);
        expect(console.output()).toMatch(/Debian GNU\/Linux 12/);
        expect(await console.run('cat /etc/e2e/order')).toBe('first\nsecond\n');
        expect(JSON.parse(await console.run('cat /etc/e2e/from-command.json'))).toEqual({ file: 'hello from a file' });
        expect(await console.run("dpkg-query -W -f='${Status}' jq")).toBe('install ok installed');
        // Cleaned for reuse: a fresh machine-id, host keys made at this boot, no customization traces.
        // (The login prompt can come before the first-boot key generation has finished: wait for the boot to end.)
        await console.run('systemctl is-system-running --wait >/dev/null', 120_000);
        expect(await console.run('test -s /etc/machine-id && test -e /etc/ssh/ssh_host_ed25519_key && echo fresh')).toBe('fresh\n');
        expect(await console.run('ls /etc/systemd/system/imagefactory-customize.service /usr/local/sbin/imagefactory-customize 2>&1 | grep -c "No such file"')).toBe('2\n');
      } finally {
        await console.close();
      }
    },
    BUILD_MS,
  );

  it(
    'fails a build whose command fails, naming the command, its exit code and output, and leaves nothing behind',
    async () => {
      await failing.events;
      const image = await getImage(daemon.url, failing.id);
      expect(image.status).toBe('FAILED');
      expect(image.status_detail.error_code).toBe('command_failed');
      expect(image.status_detail.error).toMatch(/^command will-fail exited with 3; output tail:\n/);
      expect(image.status_detail.error).toContain('preparing');
      expect(image.status_detail.error).toContain('something broke');
      expect(image.status_detail.error_details).toMatchObject({ command: 'will-fail', exitCode: 3 });
      expect(image.status_detail.error_details.outputTail).toContain('something broke');
      expect(existsSync(`${home.dirs.storage}/${failing.id}.body`)).toBe(false);
      expectNothingLeft(failing.id);
    },
    BUILD_MS,
  );
});
