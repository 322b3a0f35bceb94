import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect } from 'vitest';
import { bootConsole, type ConsoleSession } from '../../bench/serial-console.js';
import { loadTargetContent, targetContentFor } from '../../src/clouds/target-content.js';
import { BUILTIN_CLOUD_PLUGINS } from '../../src/clouds/builtin.js';
import type { CloudPlugin } from '../../src/clouds/types.js';
import { describeWithTools, file, itWithTools, tool } from '../tools.js';
import { ensureBaseImage, type BaseFixture } from './base-fixture.js';
import { closePool, leftovers, removeTestDir, sha256File, testContext, workdirLeftovers } from './context.js';
import { parseTdlOrThrow } from '../../src/tdl/index.js';

/**
 * The targets whose users boot them under KVM-like hypervisors, booted for
 * real (qemu, TCG) by their own bootloader from the converted output:
 * `ec2` from the plain base (its adapt step boots the overlay once to install
 * cloud-init and the EC2 content), `openstack-kvm` and `libvirt` from the
 * base whose template had their target content merged (no adaptation boot).
 * Each output reaches multi-user with cloud-init (or the guest agent) there;
 * cloud-init is fed a NoCloud seed over HTTP through the SMBIOS serial, so it
 * really runs. The bases' checksums are the same before and after.
 */

const TOOLS = [tool('qemu-img'), tool('qemu-system-x86_64'), tool('qemu-storage-daemon'), tool('debugfs', ['-V']), tool('mmdebstrap'), file('/dev/fuse')];
const BOOT_MS = 20 * 60_000;
const CONTENT = new URL('../../conf/target_content.xml', import.meta.url).pathname;

let seed: Server;
let seedUrl = '';
let plain: BaseFixture;
let cloud: BaseFixture;
let plainSha = '';
let cloudSha = '';

async function plugin(id: string): Promise<CloudPlugin> {
  return BUILTIN_CLOUD_PLUGINS[id]!();
}

/** Boots a finished target body and checks it reaches multi-user; returns the session for more checks. */
async function bootToMultiUser(body: string, format: 'raw' | 'qcow2', tag: string, rootpw: string): Promise<ConsoleSession> {
  const console = bootConsole(body, { format, tag, extraArgs: ['-smbios', `type=1,serial=ds=nocloud-net;s=${seedUrl}`] });
  await console.login(rootpw, 600_000);
  expect(await console.run('systemctl is-system-running --wait; systemctl is-active multi-user.target', 300_000)).toMatch(/(running|degraded)\nactive\n$/);
  return console;
}

describeWithTools(TOOLS, 'targets that boot: ec2, openstack-kvm, libvirt, and one adaptation boot', () => {
  beforeAll(async () => {
    seed = createServer((req, res) => {
      const path = (req.url ?? '').replace(/\?.*/, '');
      if (path.endsWith('/meta-data')) return void res.end('instance-id: h12-test\nlocal-hostname: h12-cloud\n');
      if (path.endsWith('/user-data')) return void res.end('#cloud-config\nruncmd:\n  - [sh, -c, "echo ran > /run/h12-cloud-init-ran"]\n');
      if (path.endsWith('/vendor-data')) return void res.end('');
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((r) => seed.listen(0, '0.0.0.0', () => r()));
    // 10.0.2.2 is the host as qemu's user network shows it to the guest.
    seedUrl = `http://10.0.2.2:${(seed.address() as AddressInfo).port}/`;
    plain = await ensureBaseImage('plain');
    cloud = await ensureBaseImage('cloud');
    plainSha = await sha256File(plain.path);
    cloudSha = await sha256File(cloud.path);
  }, 45 * 60_000);

  afterAll(async () => {
    await closePool();
    await new Promise((r) => seed?.close(r));
    if (plain) expect(await sha256File(plain.path)).toBe(plainSha);
    if (cloud) expect(await sha256File(cloud.path)).toBe(cloudSha);
  });

  itWithTools([], 'libvirt from a base without qemu-guest-agent: one adaptation boot installs the target content; the qcow2 output boots to multi-user with the agent', async () => {
    const content = targetContentFor(await loadTargetContent(CONTENT), 'libvirt', parseTdlOrThrow(plain.template));
    const { ctx, recorded, dir } = testContext({ id: 'h12-boot-libvirt-adapt', target: 'libvirt', base: plain, targetContent: content });
    const libvirt = await plugin('Libvirt');
    try {
      await libvirt.adapt.run(ctx);
      expect(recorded.guests).toEqual(['imagefactory-h12-boot-libvirt-adapt-adapt']);
      expect(recorded.properties.adaptation).toMatchObject({ booted: true, installed_packages: ['qemu-guest-agent'] });
      expect(recorded.icicle).toMatch(/<package name="qemu-guest-agent_[^"]+_amd64"/);
      expect(recorded.progress.map((p) => p.activity)).toContain('In the guest: packages');
      // Repeatable: a second run finds the adapted overlay and does nothing.
      await libvirt.adapt.run(ctx);
      expect(recorded.guests).toHaveLength(1);
      await libvirt.convert.run(ctx);
      expect(recorded.properties).toMatchObject({ format: 'qcow2', virtual_size: plain.virtualSize });
      expect(await sha256File(plain.path)).toBe(plainSha);
      const console = await bootToMultiUser(ctx.outputPath, 'qcow2', 'h12-boot-libvirt-adapt-check', plain.rootpw);
      try {
        expect(await console.run("dpkg-query -W -f='${Status}' qemu-guest-agent")).toBe('install ok installed');
        expect(await console.run('ls /etc/systemd/system/imagefactory-customize.service 2>&1 | grep -c "No such file"')).toBe('1\n');
      } finally {
        await console.close();
      }
      await libvirt.adapt.undo(ctx);
      await libvirt.adapt.undo(ctx);
      expect(leftovers(ctx)).toEqual([]);
    } finally {
      removeTestDir(dir);
    }
  }, BOOT_MS);

  itWithTools([], 'ec2 from a base that got its target content at bootstrap: no adaptation boot; the raw output boots with cloud-init running, NVMe and ENA at boot, a serial console', async () => {
    const content = targetContentFor(await loadTargetContent(CONTENT), 'ec2', parseTdlOrThrow(cloud.template));
    const { ctx, recorded, dir } = testContext({ id: 'h12-boot-ec2', target: 'ec2', base: cloud, targetContent: content });
    const ec2 = await plugin('EC2');
    try {
      await ec2.adapt.run(ctx);
      expect(recorded.guests).toEqual([]);
      const adaptation = recorded.properties.adaptation as Record<string, any>;
      expect(adaptation).toMatchObject({ booted: false, written_files: ['/etc/cloud/cloud.cfg.d/01_imagefactory.cfg'] });
      expect(adaptation.modules).toEqual({ nvme: 'built-in', ena: 'initramfs' });

      await ec2.convert.run(ctx);
      expect(recorded.properties).toMatchObject({ format: 'raw', disk_format: 'raw', container_format: 'bare', virtual_size: cloud.virtualSize });
      expect(workdirLeftovers(ctx)).toEqual([]);
      expect(await sha256File(cloud.path)).toBe(cloudSha);

      const console = await bootToMultiUser(ctx.outputPath, 'raw', 'h12-boot-ec2-check', cloud.rootpw);
      try {
        expect(await console.run('cloud-init status --wait >/dev/null; cloud-init status; cat /run/h12-cloud-init-ran', 300_000)).toBe('status: done\nran\n');
        expect(await console.run('cat /proc/cmdline')).toMatch(/console=ttyS0/);
        expect(await console.run('cat /etc/cloud/cloud.cfg.d/01_imagefactory.cfg')).toMatch(/^locale: false$/m);
        expect(await console.run("lsinitramfs /boot/initrd.img-$(uname -r) | grep -c '/ena.ko'")).toBe('1\n');
        expect(await console.run("grep -c '^CONFIG_BLK_DEV_NVME=y' /boot/config-$(uname -r)")).toBe('1\n');
        expect(await console.run("dpkg-query -W -f='${Status}' amazon-ec2-utils")).toBe('install ok installed');
        // Cleaned for reuse by the adaptation job, like a base: no customization agent left.
        expect(await console.run('ls /etc/systemd/system/imagefactory-customize.service 2>&1 | grep -c "No such file"')).toBe('1\n');
      } finally {
        await console.close();
      }
      await ec2.adapt.undo(ctx);
      await ec2.adapt.undo(ctx);
      expect(leftovers(ctx)).toEqual([]);
    } finally {
      removeTestDir(dir);
    }
  }, BOOT_MS);

  for (const [target, id, format, check] of [
    ['openstack-kvm', 'OpenStack', 'qcow2', 'cloud-init status --wait >/dev/null; cloud-init status; cat /run/h12-cloud-init-ran'],
    ['libvirt', 'Libvirt', 'qcow2', "dpkg-query -W -f='${Status}\\n' qemu-guest-agent cloud-init"],
  ] as const) {
    itWithTools([], `${target} from a base that got its target content at bootstrap: no adaptation boot; the ${format} output boots to multi-user`, async () => {
      const content = targetContentFor(await loadTargetContent(CONTENT), target, parseTdlOrThrow(cloud.template));
      const { ctx, recorded, dir } = testContext({ id: `h12-boot-${target}`, target, base: cloud, targetContent: content });
      const p = await plugin(id);
      try {
        await p.adapt.run(ctx);
        expect(recorded.guests).toEqual([]);
        // cloud-init's configuration file (CLOUD_INIT_CONFIG) is written with debugfs: no boot for it either.
        expect(recorded.properties.adaptation).toMatchObject({ booted: false, written_files: target === 'openstack-kvm' ? ['/etc/cloud/cloud.cfg.d/01_imagefactory.cfg'] : [] });
        await p.convert.run(ctx);
        expect(recorded.properties).toMatchObject({ format, virtual_size: cloud.virtualSize });
        const console = await bootToMultiUser(ctx.outputPath, format, `h12-boot-${target}-check`, cloud.rootpw);
        try {
          const out = await console.run(check, 300_000);
          expect(out).toBe(target === 'libvirt' ? 'install ok installed\ninstall ok installed\n' : 'status: done\nran\n');
        } finally {
          await console.close();
        }
        await p.adapt.undo(ctx);
        expect(leftovers(ctx)).toEqual([]);
      } finally {
        removeTestDir(dir);
      }
    }, BOOT_MS);
  }
});
