import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerFileFor, generateKickstart } from '../../src/os/answer/index.js';
import {
  extractFromIso,
  installerKernelArgs,
  isoVolumeId,
  listIso,
  locateInstallerOnIso,
  remasterIso,
} from '../../src/os/media/index.js';
import { example, runTool, tempDir, toolAvailable } from './helpers.js';
import { describeWithTools, tool } from '../tools.js';

let dir: { path: string; cleanup: () => Promise<void> };
let tinyIso: string;

beforeAll(async () => {
  dir = await tempDir('iso');
  if (!toolAvailable('xorriso', ['-version'])) return;
  // A tiny bootable "installer DVD": El Torito boot image, pxeboot kernel and initrd, a volume id.
  const src = join(dir.path, 'dvd');
  await mkdir(join(src, 'images', 'pxeboot'), { recursive: true });
  await mkdir(join(src, 'isolinux'));
  await writeFile(join(src, 'isolinux', 'boot.img'), Buffer.alloc(2048));
  await writeFile(join(src, 'images', 'pxeboot', 'vmlinuz'), 'fake kernel');
  await writeFile(join(src, 'images', 'pxeboot', 'initrd.img'), 'fake initrd');
  await writeFile(join(src, '.treeinfo'), '[images-x86_64]\nkernel = images/pxeboot/vmlinuz\n');
  tinyIso = join(dir.path, 'Fedora-Server-dvd-x86_64-40.iso');
  const r = runTool('xorriso', ['-as', 'mkisofs', '-quiet', '-o', tinyIso, '-V', 'Fedora-S-dvd-x86_64-40', '-J', '-R', '-b', 'isolinux/boot.img', '-no-emul-boot', '-boot-load-size', '4', src]);
  expect(r.status, r.stderr).toBe(0);
});
afterAll(async () => dir.cleanup());

describeWithTools([tool('xorriso', ['-version'])], 'remastering an install ISO', () => {
  it('adds /ks.cfg, keeps every original file, the volume id and the boot record', async () => {
    const answer = generateKickstart(example('fedora-40'));
    const ks = join(dir.path, 'ks.cfg');
    await writeFile(ks, answer.content);
    const out = join(dir.path, 'build', 'install.iso');
    await remasterIso(tinyIso, out, [{ source: ks, isoPath: '/ks.cfg' }]);

    const listing = runTool('xorriso', ['-indev', out, '-find', '/', '-type', 'f']).stdout.toString('utf8');
    expect(listing).toContain("'/ks.cfg'");
    expect(await listIso(out)).toEqual(expect.arrayContaining(['/ks.cfg', '/images/pxeboot/vmlinuz', '/images/pxeboot/initrd.img', '/isolinux/boot.img', '/.treeinfo']));
    expect(await isoVolumeId(out)).toBe('Fedora-S-dvd-x86_64-40');
    const elTorito = runTool('xorriso', ['-indev', out, '-report_el_torito', 'plain']).stdout.toString('utf8');
    expect(elTorito).toMatch(/El Torito boot img :\s+1\s+BIOS\s+y\s+none/);
    expect(elTorito).toContain('/isolinux/boot.img');

    await extractFromIso(out, [{ isoPath: '/ks.cfg', dest: join(dir.path, 'back', 'ks.cfg') }]);
    expect(await readFile(join(dir.path, 'back', 'ks.cfg'), 'utf8')).toBe(answer.content);
    expect((await readdir(join(dir.path, 'build'))).sort()).toEqual(['install.iso']);
  });

  it('maps directories (TDL extras and the autoinstall /nocloud/ seed) and is repeatable over its own output', async () => {
    const nocloud = join(dir.path, 'nocloud');
    await mkdir(nocloud);
    const answer = answerFileFor(example('ubuntu-22.04'));
    await writeFile(join(nocloud, 'user-data'), answer.content);
    await writeFile(join(nocloud, 'meta-data'), answer.companions[0]!.content);
    const out = join(dir.path, 'ubuntu.iso');
    await remasterIso(tinyIso, out, [{ source: nocloud, isoPath: '/nocloud' }]);
    await remasterIso(tinyIso, out, [{ source: nocloud, isoPath: '/nocloud' }]);
    expect(await listIso(out)).toEqual(expect.arrayContaining(['/nocloud/user-data', '/nocloud/meta-data']));
  });

  it('refuses an original that is not an ISO (xorriso would take it for blank media) and leaves nothing behind', async () => {
    const notIso = join(dir.path, 'not.iso');
    await writeFile(notIso, 'garbage');
    await mkdir(join(dir.path, 'failed'));
    await expect(remasterIso(notIso, join(dir.path, 'failed', 'x.iso'), [{ source: notIso, isoPath: '/ks.cfg' }])).rejects.toMatchObject({ code: 'iso_invalid' });
    expect(await readdir(join(dir.path, 'failed'))).toEqual([]);
    await expect(remasterIso(tinyIso, join(dir.path, 'x.iso'), [{ source: notIso, isoPath: 'relative' }])).rejects.toMatchObject({ code: 'invalid_argument' });
    // A real xorriso failure (the file to add is missing) is tool_failed, with xorriso's words.
    await expect(remasterIso(tinyIso, join(dir.path, 'failed', 'y.iso'), [{ source: join(dir.path, 'missing'), isoPath: '/ks.cfg' }])).rejects.toMatchObject({
      code: 'tool_failed',
      message: expect.stringMatching(/^xorriso exited with status \d+/),
    });
    expect(await readdir(join(dir.path, 'failed'))).toEqual([]);
  });

  it('does not start xorriso once the build is aborted', async () => {
    await mkdir(join(dir.path, 'aborted'));
    await expect(remasterIso(tinyIso, join(dir.path, 'aborted', 'x.iso'), [], { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    expect(await readdir(join(dir.path, 'aborted'))).toEqual([]);
  });

  it('finds the installer kernel and initrd inside the ISO', async () => {
    await expect(locateInstallerOnIso(tinyIso, 'redhat', 'x86_64')).resolves.toEqual({ kernel: '/images/pxeboot/vmlinuz', initrd: '/images/pxeboot/initrd.img' });
    await expect(locateInstallerOnIso(tinyIso, 'debian', 'x86_64')).rejects.toMatchObject({ code: 'installer_not_found', message: expect.stringContaining('/install.amd/vmlinuz') });
  });
});

describe('installer kernel command lines', () => {
  const ks = { installer: 'kickstart', fileName: 'ks.cfg' } as const;
  const preseed = { installer: 'preseed', fileName: 'preseed.cfg' } as const;
  const autoinstall = { installer: 'autoinstall', fileName: 'user-data' } as const;

  it('points Anaconda at the kickstart on the CD-ROM or in the initrd', () => {
    expect(installerKernelArgs(ks, 'cdrom')).toBe('inst.ks=cdrom:/ks.cfg inst.text inst.repo=cdrom console=tty0 console=ttyS0,115200n8');
    expect(installerKernelArgs(ks, 'initrd', { installUrl: 'http://m/os/', kernelparam: 'inst.sshd' })).toBe(
      'inst.ks=file:/ks.cfg inst.text inst.repo=http://m/os/ console=tty0 console=ttyS0,115200n8 inst.sshd',
    );
  });

  it('runs debian-installer unattended from the preseed', () => {
    expect(installerKernelArgs(preseed, 'initrd')).toMatch(/^auto=true priority=critical preseed\/file=\/preseed\.cfg /);
    expect(installerKernelArgs(preseed, 'cdrom', { serialConsole: false })).toBe(
      'auto=true priority=critical preseed/file=/cdrom/preseed.cfg debian-installer/locale=en_US.UTF-8 keyboard-configuration/xkb-keymap=us',
    );
  });

  it('starts subiquity\'s autoinstall from the NoCloud seed', () => {
    expect(installerKernelArgs(autoinstall, 'seed')).toBe('autoinstall ds=nocloud console=tty0 console=ttyS0,115200n8');
    expect(installerKernelArgs(autoinstall, 'cdrom')).toContain('autoinstall ds=nocloud;s=/cdrom/nocloud/');
    expect(() => installerKernelArgs(autoinstall, 'initrd')).toThrow(/not in the initrd/);
    expect(() => installerKernelArgs(ks, 'seed')).toThrow(/not on a seed volume/);
  });
});
