import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { locateInstaller, parseIni } from '../../src/os/media/index.js';
import { serveMirror, tempDir, type FakeMirror } from './helpers.js';

let root: { path: string; cleanup: () => Promise<void> };
let mirror: FakeMirror;

async function put(path: string, content = 'x'): Promise<void> {
  const file = join(root.path, 'www', path);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, content);
}

const TREEINFO = `[general]
family = Fedora
version = 40
arch = x86_64

[images-x86_64]
kernel = images/pxeboot/vmlinuz
initrd = images/pxeboot/initrd.img
boot.iso = images/boot.iso

[images-aarch64]
kernel = images/arm/vmlinuz
initrd = images/arm/initrd.img
`;

beforeAll(async () => {
  root = await tempDir('tree');
  // A Red Hat tree with .treeinfo, one without, a Debian and an Ubuntu archive.
  await put('fedora/40/Everything/x86_64/os/.treeinfo', TREEINFO);
  await put('fedora/40/Everything/x86_64/os/images/pxeboot/vmlinuz');
  await put('fedora/40/Everything/x86_64/os/images/pxeboot/initrd.img');
  await put('centos/9-stream/BaseOS/x86_64/os/images/pxeboot/vmlinuz');
  await put('centos/9-stream/BaseOS/x86_64/os/images/pxeboot/initrd.img');
  const di = 'debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64';
  await put(`${di}/linux`);
  await put(`${di}/initrd.gz`);
  await put('debian/dists/bookworm/main/installer-arm64/current/images/netboot/debian-installer/arm64/linux');
  await put('debian/dists/bookworm/main/installer-arm64/current/images/netboot/debian-installer/arm64/initrd.gz');
  const legacy = 'ubuntu/dists/focal/main/installer-amd64/current/legacy-images/netboot/ubuntu-installer/amd64';
  await put(`${legacy}/linux`);
  await put(`${legacy}/initrd.gz`);
  mirror = await serveMirror(join(root.path, 'www'));
});
afterAll(async () => {
  await mirror.close();
  await root.cleanup();
});

describe('finding the installer kernel and initrd in a url install tree', () => {
  it('reads a Red Hat tree\'s .treeinfo [images-<arch>]', async () => {
    const base = `${mirror.url}/fedora/40/Everything/x86_64/os/`;
    await expect(locateInstaller(base, { name: 'Fedora', version: '40', arch: 'x86_64' })).resolves.toEqual({
      family: 'redhat',
      kernelUrl: `${base}images/pxeboot/vmlinuz`,
      initrdUrl: `${base}images/pxeboot/initrd.img`,
      foundBy: 'treeinfo',
    });
    const arm = await locateInstaller(base.replace(/\/$/, ''), { name: 'Fedora', version: '40', arch: 'aarch64' });
    expect(arm.kernelUrl).toBe(`${base}images/arm/vmlinuz`);
  });

  it('falls back to images/pxeboot when there is no .treeinfo', async () => {
    const base = `${mirror.url}/centos/9-stream/BaseOS/x86_64/os`;
    await expect(locateInstaller(base, { name: 'CentOS-Stream', version: '9', arch: 'x86_64' })).resolves.toEqual({
      family: 'redhat',
      kernelUrl: `${base}/images/pxeboot/vmlinuz`,
      initrdUrl: `${base}/images/pxeboot/initrd.img`,
      foundBy: 'path',
    });
    expect(mirror.hits.get('/centos/9-stream/BaseOS/x86_64/os/.treeinfo')).toBe(1);
  });

  it('finds Debian\'s netboot installer by suite and Debian architecture (x86_64 → amd64, aarch64 → arm64)', async () => {
    const base = `${mirror.url}/debian`;
    const amd = await locateInstaller(base, { name: 'Debian', version: '12', arch: 'x86_64' });
    expect(amd).toEqual({
      family: 'debian',
      kernelUrl: `${base}/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/linux`,
      initrdUrl: `${base}/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/initrd.gz`,
      foundBy: 'path',
    });
    const arm = await locateInstaller(base, { name: 'Debian', version: '12', arch: 'aarch64' });
    expect(arm.initrdUrl).toContain('/installer-arm64/current/images/netboot/debian-installer/arm64/initrd.gz');
  });

  it('finds Ubuntu 20.04\'s legacy netboot images', async () => {
    const found = await locateInstaller(`${mirror.url}/ubuntu`, { name: 'Ubuntu', version: '20.04', arch: 'x86_64' });
    expect(found.kernelUrl).toBe(`${mirror.url}/ubuntu/dists/focal/main/installer-amd64/current/legacy-images/netboot/ubuntu-installer/amd64/linux`);
  });

  it('says where it looked when the tree has no installer', async () => {
    const error = await locateInstaller(`${mirror.url}/ubuntu`, { name: 'Ubuntu', version: '22.04', arch: 'x86_64' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'MediaError', code: 'installer_not_found' });
    expect((error as Error).message).toContain('dists/jammy/main/installer-amd64/current/images/netboot/ubuntu-installer/amd64/linux');
    expect((error as Error).message).toContain('legacy-images');
    await expect(locateInstaller(`${mirror.url}/empty`, { name: 'RHEL-9', version: '4', arch: 'x86_64' })).rejects.toThrow(/\.treeinfo.*images\/pxeboot\/vmlinuz/);
  });

  it('reads file:// trees too', async () => {
    const base = pathToFileURL(join(root.path, 'www', 'fedora/40/Everything/x86_64/os')).toString();
    await expect(locateInstaller(base, { name: 'Fedora', version: '40', arch: 'x86_64' })).resolves.toMatchObject({ foundBy: 'treeinfo', kernelUrl: `${base}/images/pxeboot/vmlinuz` });
  });

  it('parses .treeinfo as INI', () => {
    expect(parseIni(TREEINFO)['images-x86_64']).toEqual({ kernel: 'images/pxeboot/vmlinuz', initrd: 'images/pxeboot/initrd.img', 'boot.iso': 'images/boot.iso' });
  });
});
