import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runProcess } from '../../src/engine/process.js';
import { createDebianPlugin } from '../../src/os/debian/plugin.js';
import { DownloadCache } from '../../src/os/media/download-cache.js';
import type { StepContext } from '../../src/os/plugin.js';
import { parseTdlOrThrow } from '../../src/tdl/index.js';
import { serveMirror, tempDir, type FakeMirror } from './helpers.js';

/**
 * Which strategy a Debian build takes (`parameters.install_strategy`), and
 * the installer strategy's prepare step against a fake mirror: installer
 * located in the netboot layout, preseed appended to its initrd, an empty
 * qcow2 disk of the template's size. No guest is booted here (see
 * test/installer/ for that).
 */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function tdl(mirror: string, extra = ''): string {
  return `<template><name>d</name><os><name>Debian</name><version>12</version><arch>x86_64</arch><install type="url"><url>${mirror}</url></install><rootpw>pw-not-in-logs</rootpw></os>${extra}<disk><size>4GiB</size></disk></template>`;
}

async function context(template: string, parameters: Record<string, unknown>) {
  const dir = await tempDir('if-debian-strategy-');
  cleanups.push(dir.cleanup);
  const log: string[] = [];
  const signal = new AbortController().signal;
  const ctx = {
    template: parseTdlOrThrow(template),
    parameters,
    workdir: join(dir.path, 'work'),
    diskPath: join(dir.path, 'work', 'disk.img'),
    signal,
    log: (line: string) => log.push(line),
    progress: () => undefined,
    run: (command: string, args: string[], options = {}) => runProcess(command, args, { ...options, buildId: 'strategy-test', signal, log: (l) => log.push(l) }),
    runGuest: async () => {
      throw new Error('no guest in this test');
    },
    media: new DownloadCache({ dir: join(dir.path, 'media') }),
    report: () => undefined,
  } as unknown as StepContext;
  await mkdir(ctx.workdir, { recursive: true });
  return { ctx, log };
}

async function netbootMirror(): Promise<FakeMirror> {
  const root = await tempDir('if-debian-mirror-');
  cleanups.push(root.cleanup);
  const images = join(root.path, 'debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64');
  await mkdir(images, { recursive: true });
  await writeFile(join(images, 'linux'), 'a kernel');
  await writeFile(join(images, 'initrd.gz'), Buffer.alloc(1000, 7));
  const mirror = await serveMirror(root.path);
  cleanups.push(() => mirror.close());
  return mirror;
}

describe('install_strategy of the Debian plugin', () => {
  it('refuses an unknown strategy by name before doing anything', async () => {
    const { ctx } = await context(tdl('http://127.0.0.1:9/debian/'), { install_strategy: 'pxe' });
    await expect(createDebianPlugin().prepare.run(ctx)).rejects.toMatchObject({ code: 'bad_parameter', message: 'parameter install_strategy must be "bootstrap" or "installer", not "pxe"' });
  });

  it('refuses an unknown kernel flavour on the bootstrap strategy', async () => {
    const { ctx } = await context(tdl('http://127.0.0.1:9/debian/'), { kernel: 'rt' });
    await expect(createDebianPlugin().prepare.run(ctx)).rejects.toMatchObject({ code: 'bad_parameter', message: 'parameter kernel must be one of cloud, generic, not "rt"' });
  });

  it('installer: finds debian-installer in the netboot layout, appends the preseed to its initrd and makes the disk', async () => {
    const mirror = await netbootMirror();
    const { ctx, log } = await context(tdl(`${mirror.url}/debian/`), { install_strategy: 'installer' });
    await createDebianPlugin().prepare.run(ctx);
    const initrd = await readFile(join(ctx.workdir, 'installer-initrd'));
    expect(initrd.subarray(0, 1000)).toEqual(Buffer.alloc(1000, 7));
    const appended = execFileSync('sh', ['-c', `tail -c +1001 '${join(ctx.workdir, 'installer-initrd')}' | gzip -dc | cpio -i --to-stdout preseed.cfg 2>/dev/null`]).toString();
    expect(appended).toContain('d-i debian-installer/exit/poweroff boolean true');
    expect(await readFile(join(ctx.workdir, 'installer-kernel'), 'utf8')).toBe('a kernel');
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', join(ctx.workdir, 'install.qcow2')]).toString());
    expect([info.format, info['virtual-size']]).toEqual(['qcow2', 4 * 1024 ** 3]);
    expect(log.join('\n')).toContain('answer file /preseed.cfg (generated)');
    expect(log.join('\n')).not.toContain('pw-not-in-logs');
  });

  it('installer: says where it looked when the mirror has no netboot images', async () => {
    const mirror = await netbootMirror();
    const { ctx } = await context(tdl(`${mirror.url}/elsewhere/`), { install_strategy: 'installer' });
    await expect(createDebianPlugin().prepare.run(ctx)).rejects.toMatchObject({ code: 'installer_not_found' });
  });

  it('installer: refuses a template with commands instead of building without them', async () => {
    const { ctx } = await context(tdl('http://127.0.0.1:9/debian/', '<commands><command name="c">true</command></commands>'), { install_strategy: 'installer' });
    await expect(createDebianPlugin().prepare.run(ctx)).rejects.toMatchObject({ code: 'customization_unavailable' });
  });
});
