import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePreseed } from '../../src/os/answer/index.js';
import { appendToInitrd, DownloadCache, locateInstaller, newcArchive } from '../../src/os/media/index.js';
import { example, runTool, serveMirror, tempDir, toolAvailable } from './helpers.js';
import { describeWithTools, tool } from '../tools.js';

let dir: { path: string; cleanup: () => Promise<void> };

/** `cpio -t` of an uncompressed archive. */
function cpioList(archive: Buffer): string[] {
  const r = runTool('cpio', ['-t', '--quiet'], archive);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.toString('utf8').trim().split('\n');
}

/** `cpio -i --to-stdout NAME` of an uncompressed archive. */
function cpioCat(archive: Buffer, name: string): string {
  const r = runTool('cpio', ['-i', '--quiet', '--to-stdout', name], archive);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.toString('utf8');
}

/** A real initrd made by the cpio tool: a gzipped newc archive of a few files. */
async function makeInitrd(name: string, extraBytes = 0): Promise<string> {
  const src = join(dir.path, `${name}-tree`);
  await mkdir(join(src, 'bin'), { recursive: true });
  await writeFile(join(src, 'init'), '#!/bin/sh\necho original init\n');
  await writeFile(join(src, 'bin', 'tool'), 'x'.repeat(extraBytes));
  const list = runTool('sh', ['-c', `cd '${src}' && find . | cpio -o -H newc --quiet | gzip -9`]);
  expect(list.status, list.stderr).toBe(0);
  const path = join(dir.path, `${name}.img`);
  await writeFile(path, list.stdout);
  return path;
}

beforeAll(async () => {
  dir = await tempDir('initrd');
});
afterAll(async () => dir.cleanup());

describeWithTools([tool('cpio')], 'the newc cpio writer', () => {
  it('writes archives that cpio lists and extracts, with parent directories', () => {
    const archive = newcArchive([
      { name: '/ks.cfg', data: 'text\npoweroff\n' },
      { name: 'nocloud/user-data', data: '#cloud-config\n' },
      { name: 'nocloud/meta-data', data: Buffer.from('instance-id: x\n'), mode: 0o600 },
      { name: 'empty', data: '' },
    ]);
    expect(archive.length % 4).toBe(0);
    expect(cpioList(archive)).toEqual(['ks.cfg', 'nocloud', 'nocloud/user-data', 'nocloud/meta-data', 'empty']);
    expect(cpioCat(archive, 'ks.cfg')).toBe('text\npoweroff\n');
    expect(cpioCat(archive, 'nocloud/meta-data')).toBe('instance-id: x\n');
    const verbose = runTool('cpio', ['-t', '-v', '--quiet'], archive).stdout.toString('utf8');
    expect(verbose).toMatch(/^-rw------- .* nocloud\/meta-data$/m);
    expect(verbose).toMatch(/^drwxr-xr-x .* nocloud$/m);
  });

  it('is byte-for-byte reproducible and refuses names that climb out', () => {
    expect(newcArchive([{ name: 'a', data: 'b' }])).toEqual(newcArchive([{ name: 'a', data: 'b' }]));
    expect(() => newcArchive([{ name: '../etc/passwd', data: 'x' }])).toThrow(/plain relative path/);
  });
});

describeWithTools([tool('cpio')], 'appending the answer file to an initrd', () => {
  it('leaves the original bytes untouched and appends a gzip newc archive listing the answer file', async () => {
    const original = await makeInitrd('gz', 1001);
    const before = await readFile(original);
    const out = join(dir.path, 'gz-with-preseed.img');
    const answer = generatePreseed(example('debian-12'));
    const result = await appendToInitrd(original, out, [{ name: `/${answer.fileName}`, data: answer.content }]);
    const after = await readFile(out);

    expect(result.originalBytes).toBe(before.length);
    expect(after.subarray(0, before.length)).toEqual(before);
    expect(after.subarray(before.length, result.appendedOffset).every((b) => b === 0)).toBe(true);
    expect(result.appendedOffset % 4).toBe(0);
    expect(result.totalBytes).toBe(after.length);

    const appended = gunzipSync(after.subarray(result.appendedOffset));
    expect(cpioList(appended)).toEqual(['preseed.cfg']);
    expect(cpioCat(appended, 'preseed.cfg')).toBe(answer.content);
    // The original part is still the archive it was.
    expect(cpioList(gunzipSync(after.subarray(0, before.length)))).toEqual(expect.arrayContaining(['init', 'bin', 'bin/tool']));
    expect(await readFile(original)).toEqual(before);
  });

  it('can append uncompressed, aligned to 4 bytes after an original of any length', async () => {
    const original = join(dir.path, 'odd.img');
    // 10 bytes: the appended archive must start 2 NULs later, at 12.
    await writeFile(original, gzipSync(Buffer.from('odd')).subarray(0, 10));
    const before = await readFile(original);
    expect(before.length).toBe(10);
    const out = join(dir.path, 'odd-with-ks.img');
    const result = await appendToInitrd(original, out, [{ name: 'ks.cfg', data: 'poweroff\n' }], { compression: 'none' });
    const after = await readFile(out);
    expect(after.subarray(0, before.length)).toEqual(before);
    expect(result.appendedOffset).toBe(12);
    const appended = after.subarray(result.appendedOffset);
    expect(appended.subarray(0, 6).toString('ascii')).toBe('070701');
    expect(cpioList(appended)).toEqual(['ks.cfg']);
  });

  it('refuses a missing initrd or nothing to append', async () => {
    await expect(appendToInitrd(join(dir.path, 'nope'), join(dir.path, 'o'), [{ name: 'a', data: 'b' }])).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(appendToInitrd(await makeInitrd('empty-list'), join(dir.path, 'o'), [])).rejects.toMatchObject({ code: 'invalid_argument' });
  });

  it('end to end: locate the netboot installer in a fake Debian mirror, download it through the cache, append the preseed', async () => {
    const www = join(dir.path, 'www');
    const netboot = join(www, 'debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64');
    await mkdir(netboot, { recursive: true });
    await writeFile(join(netboot, 'linux'), 'fake kernel');
    await writeFile(join(netboot, 'initrd.gz'), await readFile(await makeInitrd('netboot')));
    const mirror = await serveMirror(www);
    try {
      const t = example('debian-12');
      const location = await locateInstaller(`${mirror.url}/debian`, t.os);
      const cache = new DownloadCache({ dir: join(dir.path, 'cache') });
      const [kernel, initrd] = await Promise.all([cache.get(location.kernelUrl), cache.get(location.initrdUrl)]);
      expect(await readFile(kernel.path, 'utf8')).toBe('fake kernel');
      const answer = generatePreseed(t);
      const out = join(dir.path, 'build', 'initrd-preseed.gz');
      await mkdir(join(dir.path, 'build'));
      const result = await appendToInitrd(initrd.path, out, [{ name: answer.fileName, data: answer.content }]);
      expect(cpioCat(gunzipSync((await readFile(out)).subarray(result.appendedOffset)), 'preseed.cfg')).toContain('d-i debian-installer/exit/poweroff boolean true');
    } finally {
      await mirror.close();
    }
  });
});
