import { spawnSync } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, readSync, closeSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterAll, beforeAll, expect } from 'vitest';
import { BUILTIN_CLOUD_PLUGINS } from '../../src/clouds/builtin.js';
import type { CloudPlugin, CloudStepContext } from '../../src/clouds/types.js';
import { StepError } from '../../src/os/plugin.js';
import { openImageView } from '../../src/clouds/image-view.js';
import { loadTargetContent, targetContentFor } from '../../src/clouds/target-content.js';
import { parseTdlOrThrow } from '../../src/tdl/index.js';
import { describeWithTools, file, itWithTools, tool } from '../tools.js';
import { ensureBaseImage, type BaseFixture } from './base-fixture.js';
import { closePool, leftovers, removeTestDir, sha256File, testContext, workdirLeftovers, type Recorded } from './context.js';

/**
 * Every target's output, made from the real Debian base, read by the tool
 * its cloud would use: qemu-img for disks, the VHD footer as Azure reads it,
 * tar for GCE and OVA, an XML parser for the OVF, skopeo and podman for the
 * OCI archive. No target here needs a boot (no target content is given, and
 * the base already has what their drivers need), which each test checks.
 */

const TOOLS = [tool('qemu-img'), tool('qemu-storage-daemon'), tool('debugfs', ['-V']), tool('mmdebstrap'), tool('tar'), file('/dev/fuse')];
const MS = 10 * 60_000;
const MiB = 1024 * 1024;

let base: BaseFixture;
let baseSha = '';

const sh = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
};
const info = (path: string, format?: string) => JSON.parse(sh('qemu-img', ['info', '--output=json', ...(format ? ['-f', format] : []), path])) as Record<string, any>;

async function build(target: string, id: string, parameters: Record<string, unknown> = {}): Promise<{ ctx: CloudStepContext; recorded: Recorded; dir: string; plugin: CloudPlugin }> {
  const plugin = await BUILTIN_CLOUD_PLUGINS[id]!();
  const t = testContext({ id: `h12-${target}-${Object.values(parameters).join('-') || 'default'}`.replace(/[^a-z0-9-]/gi, '-'), target, base, parameters });
  plugin.check(target, parameters, t.ctx.settings);
  await plugin.adapt.run(t.ctx);
  expect(t.recorded.guests).toEqual([]);
  await plugin.convert.run(t.ctx);
  expect(existsSync(t.ctx.outputPath)).toBe(true);
  expect(workdirLeftovers(t.ctx)).toEqual([]);
  return { ...t, plugin };
}

async function finish(b: { ctx: CloudStepContext; dir: string; plugin: CloudPlugin }): Promise<void> {
  await b.plugin.convert.undo(b.ctx);
  await b.plugin.adapt.undo(b.ctx);
  // undo twice is safe
  await b.plugin.convert.undo(b.ctx);
  await b.plugin.adapt.undo(b.ctx);
  expect(existsSync(b.ctx.outputPath)).toBe(false);
  expect(leftovers(b.ctx)).toEqual([]);
  removeTestDir(b.dir);
}

function readAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, offset);
    return buf;
  } finally {
    closeSync(fd);
  }
}

describeWithTools(TOOLS, 'target outputs, read by their clouds’ tools', () => {
  beforeAll(async () => {
    base = await ensureBaseImage('plain');
    baseSha = await sha256File(base.path);
  }, 45 * 60_000);

  afterAll(async () => {
    await closePool();
    if (base) expect(await sha256File(base.path)).toBe(baseSha);
  });

  itWithTools([], 'plain conversions: raw, qcow2, vmdk, vhd, vhdx, each qemu-img readable in its format at the base’s virtual size', async () => {
    for (const [target, qemuFormat] of [['raw', 'raw'], ['qcow2', 'qcow2'], ['vmdk', 'vmdk'], ['vhd', 'vpc'], ['vhdx', 'vhdx']] as const) {
      const b = await build(target, 'Formats');
      const i = info(b.ctx.outputPath);
      expect([target, i.format, i['virtual-size']]).toEqual([target, qemuFormat, base.virtualSize]);
      expect(i['backing-filename']).toBeUndefined();
      const conversion = b.recorded.properties.conversion as Record<string, any>;
      expect(conversion.commands[0]).toMatch(new RegExp(`^qemu-img convert (-W )?-f qcow2 -O ${qemuFormat}`));
      // Progress from qemu-img -p, mapped into the step's 0–100, never goes back.
      const progress = b.recorded.progress.filter((p) => p.activity.startsWith('Converting')).map((p) => p.percent);
      expect(progress.length).toBeGreaterThan(2);
      expect(progress.every((p, i) => i === 0 || p >= progress[i - 1]!)).toBe(true);
      expect(progress.at(-1)).toBe(99);
      await finish(b);
    }
  }, MS);

  itWithTools([], 'hyperv and azure: a fixed VHD whose footer states a 1 MiB-aligned size, read by qemu-img as vpc', async () => {
    for (const target of ['hyperv', 'azure']) {
      const b = await build(target, 'HyperV');
      const size = statSync(b.ctx.outputPath).size;
      const footer = readAt(b.ctx.outputPath, size - 512, 512);
      expect(footer.subarray(0, 8).toString('latin1')).toBe('conectix');
      expect(footer.readUInt32BE(60)).toBe(2); // disk type 2: fixed
      const current = Number(footer.readBigUInt64BE(48));
      expect(current % MiB).toBe(0);
      expect(current).toBe(base.virtualSize);
      expect(size).toBe(current + 512);
      expect(info(b.ctx.outputPath, 'vpc')['virtual-size']).toBe(current);
      expect(b.recorded.properties.adaptation).toMatchObject({ booted: false, modules: { hv_vmbus: 'initramfs', hv_storvsc: 'initramfs', hv_netvsc: 'initramfs' } });
      await finish(b);
    }
  }, MS);

  itWithTools([], 'gce: a gzip’d GNU tar holding exactly disk.raw, stored sparse, whose raw disk has the base’s size', async () => {
    const b = await build('gce', 'GCE');
    const members = sh('tar', ['-tzf', b.ctx.outputPath]).trim().split('\n');
    expect(members).toEqual(['disk.raw']);
    // The first header: GNU magic, and type 'S' (an old GNU sparse file).
    const head = gunzipSync(readFileSync(b.ctx.outputPath)).subarray(0, 512);
    expect(head.subarray(257, 265).toString('latin1')).toBe('ustar  \0');
    expect(String.fromCharCode(head[156]!)).toBe('S');
    const out = join(b.dir, 'x');
    mkdirSync(out);
    sh('tar', ['-xzSf', b.ctx.outputPath, '-C', out]);
    const raw = join(out, 'disk.raw');
    expect(statSync(raw).size).toBe(base.virtualSize);
    expect(statSync(raw).blocks * 512).toBeLessThan(base.virtualSize / 2);
    expect(sh('sfdisk', ['-J', raw])).toContain('"type": "83"');
    removeTestDir(out);
    await finish(b);
  }, MS);

  itWithTools([], 'vsphere: streamOptimized by default, monolithicSparse with vsphere_vmdk_format=standard', async () => {
    for (const [fmt, createType] of [[undefined, 'streamOptimized'], ['standard', 'monolithicSparse'], ['streaming', 'streamOptimized']] as const) {
      const b = await build('vsphere', 'VSphere', fmt ? { vsphere_vmdk_format: fmt } : {});
      const i = info(b.ctx.outputPath, 'vmdk');
      expect([i['virtual-size'], i['format-specific'].data['create-type']]).toEqual([base.virtualSize, createType]);
      await finish(b);
    }
  }, MS);

  itWithTools([], 'ova: descriptor first, then manifest and VMDK; the OVF is well-formed and its reference, size and capacity match the VMDK', async () => {
    const b = await build('ova', 'OVA', { ovf_cpu_count: 2, ovf_memory_mb: 2048, ovf_name: 'h12 appliance' });
    const listing = sh('tar', ['-tvf', b.ctx.outputPath]).trim().split('\n');
    const names = listing.map((l) => l.split(/\s+/).at(-1));
    expect(names).toEqual(['h12_appliance.ovf', 'h12_appliance.mf', 'h12_appliance-disk1.vmdk']);
    const out = join(b.dir, 'x');
    mkdirSync(out);
    sh('tar', ['-xf', b.ctx.outputPath, '-C', out]);
    const ovfText = readFileSync(join(out, 'h12_appliance.ovf'), 'utf8');
    expect(XMLValidator.validate(ovfText)).toBe(true);
    const ovf = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(ovfText).Envelope;
    const vmdk = join(out, 'h12_appliance-disk1.vmdk');
    expect(ovf.References.File).toMatchObject({ 'ovf:href': 'h12_appliance-disk1.vmdk', 'ovf:id': 'file1', 'ovf:size': String(statSync(vmdk).size) });
    expect(ovf.DiskSection.Disk).toMatchObject({ 'ovf:fileRef': 'file1', 'ovf:capacity': String(base.virtualSize), 'ovf:diskId': 'vmdisk1' });
    const items = ovf.VirtualSystem.VirtualHardwareSection.Item as Record<string, unknown>[];
    expect(items.find((i) => i['rasd:ResourceType'] === 3)).toMatchObject({ 'rasd:VirtualQuantity': 2 });
    expect(items.find((i) => i['rasd:ResourceType'] === 4)).toMatchObject({ 'rasd:VirtualQuantity': 2048 });
    expect(items.find((i) => i['rasd:ResourceType'] === 17)).toMatchObject({ 'rasd:HostResource': 'ovf:/disk/vmdisk1' });
    expect(ovf.VirtualSystem.Name).toBe('h12 appliance');
    const mf = readFileSync(join(out, 'h12_appliance.mf'), 'utf8');
    expect(mf).toBe(`SHA256(h12_appliance.ovf)= ${await sha256File(join(out, 'h12_appliance.ovf'))}\nSHA256(h12_appliance-disk1.vmdk)= ${await sha256File(vmdk)}\n`);
    const i = info(vmdk, 'vmdk');
    expect([i['virtual-size'], i['format-specific'].data['create-type']]).toEqual([base.virtualSize, 'streamOptimized']);
    removeTestDir(out);
    await finish(b);
  }, MS);

  itWithTools([], 'rhevm and ovirt: qcow2 by default (the configuration’s rhevm_image_format), raw when asked', async () => {
    for (const [target, params, format] of [['rhevm', {}, 'qcow2'], ['ovirt', { rhevm_image_format: 'raw' }, 'raw']] as const) {
      const b = await build(target, 'RHEVM', params);
      expect(info(b.ctx.outputPath)).toMatchObject({ format, 'virtual-size': base.virtualSize });
      expect(b.recorded.properties).toMatchObject({ disk_format: format, container_format: 'bare' });
      await finish(b);
    }
  }, MS);

  itWithTools([tool('skopeo'), tool('podman')], 'docker: an OCI archive that skopeo inspects and podman loads, with the root filesystem in it', async () => {
    for (const params of [{ repository: 'h12/fixture', tag: 'v1' }, { repository: 'h12/fixture', tag: 'gz', compress: 'gzip' }, { repository: 'h12/fixture', tag: 'xz', compress: 'xz' }]) {
      const b = await build('docker', 'Docker', params);
      if (params.compress === 'xz') {
        // The original's whole-archive compression: podman load reads it as it is.
        expect(readAt(b.ctx.outputPath, 0, 6)).toEqual(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
        expect(sh('podman', ['load', '-i', b.ctx.outputPath])).toMatch(/Loaded image: localhost\/h12\/fixture:xz/);
        sh('podman', ['rmi', '-f', 'localhost/h12/fixture:xz']);
        await finish(b);
        continue;
      }
      const members = sh('tar', ['-tf', b.ctx.outputPath]).trim().split('\n');
      expect(members.slice(0, 3)).toEqual(['oci-layout', 'index.json', 'manifest.json']);
      const inspected = JSON.parse(sh('skopeo', ['inspect', `oci-archive:${b.ctx.outputPath}`])) as Record<string, any>;
      expect(inspected).toMatchObject({ Architecture: 'amd64', Os: 'linux' });
      expect(inspected.Layers).toHaveLength(1);
      const oci = b.recorded.properties.conversion as Record<string, any>;
      expect(inspected.Layers[0]).toBe(oci.oci.layers[0].digest);
      expect(oci.oci.layers[0].media_type).toBe(params.compress === 'gzip' ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar');
      const loaded = sh('podman', ['load', '-i', b.ctx.outputPath]);
      expect(loaded).toMatch(/Loaded image/);
      try {
        // The file the template wrote, read from the image's layer by podman's own storage.
        const mount = sh('podman', ['image', 'mount', `localhost/h12/fixture:${params.tag}`]).trim();
        try {
          expect(readFileSync(join(mount, 'etc/h12-fixture'), 'utf8')).toBe('base image of the cloud tests');
          expect(statSync(join(mount, 'usr/bin/dpkg')).mode & 0o111).toBeTruthy();
        } finally {
          sh('podman', ['image', 'unmount', `localhost/h12/fixture:${params.tag}`]);
        }
      } finally {
        sh('podman', ['rmi', '-f', `localhost/h12/fixture:${params.tag}`]);
      }
      await finish(b);
    }
  }, MS);

  itWithTools([], 'a conversion cancelled halfway leaves no output, no partial file and no process', async () => {
    const plugin = await BUILTIN_CLOUD_PLUGINS.Formats!();
    const abort = new AbortController();
    const t = testContext({ id: 'h12-cancel', target: 'raw', base, signal: abort.signal });
    try {
      await plugin.adapt.run(t.ctx);
      const origProgress = t.ctx.progress;
      t.ctx.progress = (percent, activity) => {
        origProgress(percent, activity);
        if (percent > 0 && percent < 90 && !abort.signal.aborted) abort.abort(new Error('cancel test'));
      };
      await expect(plugin.convert.run(t.ctx)).rejects.toThrow();
      expect(abort.signal.aborted).toBe(true);
      expect(existsSync(t.ctx.outputPath)).toBe(false);
      expect(existsSync(`${t.ctx.outputPath}.partial`)).toBe(false);
      expect(workdirLeftovers(t.ctx)).toEqual([]);
      await plugin.convert.undo(t.ctx);
      await plugin.adapt.undo(t.ctx);
      expect(leftovers(t.ctx)).toEqual([]);
    } finally {
      removeTestDir(t.dir);
    }
  }, MS);

  itWithTools([], 'openstack-kvm on a base that has cloud-init: its cloud-init configuration is written into the thin overlay with debugfs, no boot', async () => {
    const cloud = await ensureBaseImage('cloud');
    const plugin = await BUILTIN_CLOUD_PLUGINS.OpenStack!();
    const content = targetContentFor(await loadTargetContent(new URL('../../conf/target_content.xml', import.meta.url).pathname), 'openstack-kvm', parseTdlOrThrow(cloud.template));
    const t = testContext({ id: 'h12-openstack-raw', target: 'openstack-kvm', base: cloud, targetContent: content, parameters: { openstack_image_format: 'raw' } });
    try {
      await plugin.adapt.run(t.ctx);
      expect(t.recorded.guests).toEqual([]);
      expect(t.recorded.properties.adaptation).toMatchObject({ booted: false, written_files: ['/etc/cloud/cloud.cfg.d/01_imagefactory.cfg'] });
      // Copy-on-write: the overlay holds only the clusters debugfs wrote.
      expect(info(join(t.ctx.workdir, 'overlay.qcow2'))['actual-size']).toBeLessThan(16 * MiB);
      await plugin.adapt.run(t.ctx); // repeatable
      await plugin.convert.run(t.ctx);
      expect(info(t.ctx.outputPath)).toMatchObject({ format: 'raw', 'virtual-size': cloud.virtualSize });
      const cfg = sh('debugfs', ['-R', 'cat /etc/cloud/cloud.cfg.d/01_imagefactory.cfg', `${t.ctx.outputPath}?offset=1048576`]);
      expect(cfg).toMatch(/^locale: false$/m);
      const stat = sh('debugfs', ['-R', 'stat /etc/cloud/cloud.cfg.d/01_imagefactory.cfg', `${t.ctx.outputPath}?offset=1048576`]);
      expect(stat).toMatch(/Mode: +0644/);
      expect(stat).toMatch(/User: +0 +Group: +0/);
      await plugin.convert.undo(t.ctx);
      await plugin.adapt.undo(t.ctx);
      expect(leftovers(t.ctx)).toEqual([]);
    } finally {
      removeTestDir(t.dir);
    }
  }, MS);

  itWithTools([tool('qemu-system-x86_64')], 'an adaptation boot cancelled while the guest runs leaves no guest, view, overlay or file', async () => {
    const plugin = await BUILTIN_CLOUD_PLUGINS.EC2!();
    const abort = new AbortController();
    const t = testContext({ id: 'h12-cancel-adapt', target: 'ec2', base, signal: abort.signal });
    try {
      const progress = t.ctx.progress;
      t.ctx.progress = (percent, activity) => {
        progress(percent, activity);
        // The guest is defined and started right after this report; give it a few seconds of life.
        if (activity.startsWith('Booting the image once')) setTimeout(() => abort.abort(new Error('cancel test')), 5000);
      };
      await expect(plugin.adapt.run(t.ctx)).rejects.toMatchObject({ code: 'cancelled' });
      expect(t.recorded.guests).toEqual(['imagefactory-h12-cancel-adapt-adapt']);
      await plugin.adapt.undo(t.ctx);
      expect(leftovers(t.ctx)).toEqual([]);
    } finally {
      removeTestDir(t.dir);
    }
  }, MS);

  itWithTools([], 'a FUSE view whose daemon was killed (a crashed run) is unmounted and removed by undo', async () => {
    const plugin = await BUILTIN_CLOUD_PLUGINS.Formats!();
    const t = testContext({ id: 'h12-stale-view', target: 'qcow2', base });
    try {
      await plugin.adapt.run(t.ctx);
      const path = join(t.ctx.workdir, 'overlay.view');
      await openImageView(t.ctx, { image: join(t.ctx.workdir, 'overlay.qcow2'), format: 'qcow2', path, writable: true });
      const pid = Number(readFileSync(`${path}.pid`, 'utf8'));
      process.kill(pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 300));
      expect(readFileSync('/proc/mounts', 'utf8')).toContain(path);
      await plugin.adapt.undo(t.ctx);
      expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(path);
      expect(existsSync(path)).toBe(false);
      expect(leftovers(t.ctx)).toEqual([]);
    } finally {
      removeTestDir(t.dir);
    }
  }, MS);

  itWithTools([], 'parameters are checked with stable codes before any work', async () => {
    const settings = { rhevm_image_format: 'qcow2', openstack_image_format: 'qcow2' } as const;
    const code = (id: string, target: string, parameters: Record<string, unknown>) =>
      BUILTIN_CLOUD_PLUGINS[id]!().then((p) => {
        try {
          p.check(target, parameters, settings);
          return 'ok';
        } catch (e) {
          return (e as StepError).code;
        }
      });
    expect(await code('VSphere', 'vsphere', { vsphere_vmdk_format: 'fancy' })).toBe('bad_parameter');
    expect(await code('EC2', 'ec2', { ec2_virt_type: 'paravirtual' })).toBe('not_supported');
    expect(await code('EC2', 'ec2', { ec2_virt_type: 'hvm', skip_ec2_modifications: 'true' })).toBe('ok');
    expect(await code('OVA', 'ova', { ovf_cpu_count: 'many' })).toBe('bad_parameter');
    expect(await code('Docker', 'docker', { compress: 'lz4' })).toBe('bad_parameter');
    expect(await code('Docker', 'docker', { repository: 'Not Valid' })).toBe('bad_parameter');
    expect(await code('RHEVM', 'rhevm', { rhevm_image_format: 'vmdk' })).toBe('bad_parameter');
    expect(await code('OpenStack', 'openstack-kvm', { openstack_image_format: 'raw' })).toBe('ok');
  });
});
