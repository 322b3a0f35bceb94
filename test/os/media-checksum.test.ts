import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChecksum, hashFile, MediaError, parseChecksumFile, verifyChecksum, type ChecksumKind } from '../../src/os/media/index.js';
import { serveMirror, tempDir, type FakeMirror } from './helpers.js';

const ISO = 'Fedora-Server-dvd-x86_64-40-1.14.iso';
let root: { path: string; cleanup: () => Promise<void> };
let mirror: FakeMirror;
let isoPath: string;
const data = randomBytes(100_000);
const digest = (kind: ChecksumKind, d: Buffer = data) => createHash(kind).update(d).digest('hex');
const other = (kind: ChecksumKind) => digest(kind, Buffer.from('something else'));

/** The three formats, each listing the ISO among other files. */
const FORMATS: Record<string, (kind: ChecksumKind, hash: string) => string> = {
  'GNU text mode (HASH  name)': (kind, hash) => `${other(kind)}  Fedora-Server-netinst-x86_64-40-1.14.iso\n${hash}  ${ISO}\n`,
  'GNU binary mode (HASH *name)': (kind, hash) => `${other(kind)} *boot.iso\n${hash} *${ISO}\n`,
  'BSD style, a Fedora CHECKSUM file': (kind, hash) =>
    [
      '-----BEGIN PGP SIGNED MESSAGE-----',
      'Hash: SHA256',
      '',
      `# ${ISO}: 2612854784 bytes`,
      `${kind.toUpperCase()} (${ISO}) = ${hash}`,
      '# Fedora-Server-netinst-x86_64-40-1.14.iso: 843055104 bytes',
      `${kind.toUpperCase()} (Fedora-Server-netinst-x86_64-40-1.14.iso) = ${other(kind)}`,
      '-----BEGIN PGP SIGNATURE-----',
      '',
      'iQIzBAEBCAAdFiEE…',
      '-----END PGP SIGNATURE-----',
      '',
    ].join('\n'),
};

async function publish(name: string, text: string): Promise<string> {
  await writeFile(join(root.path, 'www', name), text);
  return `${mirror.url}/${name}`;
}

beforeAll(async () => {
  root = await tempDir('checksum');
  await mkdir(join(root.path, 'www'));
  mirror = await serveMirror(join(root.path, 'www'));
  isoPath = join(root.path, 'downloaded.iso');
  await writeFile(isoPath, data);
});
afterAll(async () => {
  await mirror.close();
  await root.cleanup();
});

describe('verifying an ISO against its checksum file', () => {
  let n = 0;
  for (const [format, write] of Object.entries(FORMATS)) {
    for (const kind of ['md5', 'sha1', 'sha256'] as const) {
      it(`${format}, ${kind}: ok, mismatch, missing`, async () => {
        const isoUrl = `${mirror.url}/releases/40/Server/x86_64/iso/${ISO}`;
        const good = await publish(`good-${++n}`, write(kind, digest(kind)));
        await expect(verifyChecksum(isoPath, isoUrl, { kind, url: good })).resolves.toEqual({ kind, expected: digest(kind), actual: digest(kind) });

        const wrong = other(kind).replace(/^./, (c) => (c === '0' ? '1' : '0'));
        const bad = await publish(`bad-${n}`, write(kind, wrong));
        const mismatch = await verifyChecksum(isoPath, isoUrl, { kind, url: bad }).catch((e: unknown) => e);
        expect(mismatch).toBeInstanceOf(MediaError);
        expect(mismatch).toMatchObject({ code: 'checksum_mismatch', details: { expected: wrong, actual: digest(kind), fileName: ISO } });
        expect((mismatch as Error).message).toContain(`${kind} of ${ISO} is ${digest(kind)}, but`);

        const missing = await verifyChecksum(isoPath, `${mirror.url}/x/Other-40.iso`, { kind, url: good }).catch((e: unknown) => e);
        expect(missing).toMatchObject({ code: 'checksum_missing' });
        expect((missing as Error).message).toMatch(new RegExp(`no ${kind} line for Other-40.iso \\(it lists .*${ISO.replace(/\./g, '\\.')}`));
      });
    }
  }

  it('ignores lines of another algorithm (a sha256 expectation never matches an md5 line)', async () => {
    const url = await publish('md5-only', `MD5 (${ISO}) = ${digest('md5')}\n${digest('md5')}  ${ISO}\n`);
    await expect(verifyChecksum(isoPath, `http://h/${ISO}`, { kind: 'sha256', url })).rejects.toMatchObject({ code: 'checksum_missing' });
  });

  it('accepts a checksum file that is a single bare hash, and matches listed names by basename', async () => {
    const bare = await publish('bare.sha256', `${digest('sha256')}\n`);
    await expect(verifyChecksum(isoPath, `file:///isos/rhel-9.4-x86_64-dvd.iso`, { kind: 'sha256', url: bare })).resolves.toMatchObject({ actual: digest('sha256') });
    const nested = await publish('nested', `${digest('sha1')}  ./iso/${ISO}\n`);
    await expect(verifyChecksum(isoPath, `http://h/${ISO}`, { kind: 'sha1', url: nested })).resolves.toMatchObject({ kind: 'sha1' });
  });

  it('reads file:// checksum files (as the RHEL example uses) and reports unreadable ones as missing', async () => {
    const local = join(root.path, 'rhel.iso.sha256');
    await writeFile(local, `${digest('sha256')} *rhel-9.4-x86_64-dvd.iso\n`);
    await expect(verifyChecksum(isoPath, 'file:///var/lib/imagefactory/isos/rhel-9.4-x86_64-dvd.iso', { kind: 'sha256', url: pathToFileURL(local).toString() })).resolves.toMatchObject({
      kind: 'sha256',
    });
    await expect(verifyChecksum(isoPath, `http://h/${ISO}`, { kind: 'sha256', url: `${mirror.url}/no-such-CHECKSUM` })).rejects.toMatchObject({
      code: 'checksum_missing',
      message: expect.stringContaining('HTTP 404'),
    });
    await expect(verifyChecksum(isoPath, `http://h/${ISO}`, { kind: 'sha256', url: pathToFileURL(join(root.path, 'nope')).toString() })).rejects.toMatchObject({ code: 'checksum_missing' });
  });

  it('says so when the checksum file has no line in a known format', async () => {
    const url = await publish('garbage', '<html>mirror error page</html>\n');
    await expect(verifyChecksum(isoPath, `http://h/${ISO}`, { kind: 'sha256', url })).rejects.toThrow(/no line in a known format/);
  });

  it('lets the build pass its own loader and hasher (a worker pool)', async () => {
    const seen: string[] = [];
    const result = await verifyChecksum(
      '/not/read',
      `http://h/${ISO}`,
      { kind: 'sha256', url: 'http://checksums/CHECKSUM' },
      { load: async (u) => (seen.push(u), `SHA256 (${ISO}) = ${'ab'.repeat(32)}\n`), hashFile: async (p, k) => (seen.push(`${k}:${p}`), 'AB'.repeat(32)) },
    );
    expect(result.expected).toBe('ab'.repeat(32));
    expect(seen).toEqual(['http://checksums/CHECKSUM', 'sha256:/not/read']);
  });

  it('parses and hashes on their own', async () => {
    expect(parseChecksumFile(`${digest('sha256')}  a.iso\nnonsense\n`, 'sha256')).toEqual([{ fileName: 'a.iso', hash: digest('sha256') }]);
    expect(findChecksum(parseChecksumFile(`SHA256 (b.iso) = ${'A'.repeat(64)}`, 'sha256'), 'dir/b.iso')).toBe('a'.repeat(64));
    expect(await hashFile(isoPath, 'sha256')).toBe(digest('sha256'));
  });
});
