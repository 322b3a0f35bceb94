// The libvirt push against the system libvirtd (qemu:///system), in a storage pool of its own.
import { execFile, execFileSync } from 'node:child_process';
import { makeQcow2 } from './disk-fixture.js';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_POOL, libvirtAccess } from '../../../src/clouds/providers/libvirt/access.js';
import { libvirtProvider } from '../../../src/clouds/providers/libvirt/index.js';
import { ProviderError } from '../../../src/clouds/providers/errors.js';
import type { PushContext } from '../../../src/clouds/providers/types.js';
import { WorkerPool } from '../../../src/pool/index.js';
import { describeWithTools, tool } from '../../tools.js';
import { makePushContext, rejection } from './push-context.js';

const run = promisify(execFile);
const URI = 'qemu:///system';
const MiB = 1024 * 1024;
const virsh = async (...args: string[]) => {
  try {
    const { stdout } = await run('virsh', ['-q', '-c', URI, ...args]);
    return { code: 0, stdout };
  } catch (error) {
    return { code: (error as { code?: number }).code ?? 1, stdout: '' };
  }
};

describeWithTools([tool('virsh', ['-c', URI, 'version']), tool('qemu-img')], 'libvirt push (storage pool volume + defined domain)', () => {
  let dir: string;
  let pool: WorkerPool;
  let qcow2: string;
  let big: string;
  const poolName = `h13test-${randomBytes(4).toString('hex')}`;
  const provider = () => JSON.stringify({ uri: URI, pool: poolName, pool_path: join(dir, 'pool'), domain_type: 'qemu', memory_mib: 512 });
  const context = (overrides: Partial<PushContext> = {}) =>
    makePushContext({ imageId: randomUUID(), target: 'libvirt', file: qcow2, templateName: 'Debian 12 (bookworm)', arch: 'x86_64', provider: provider(), credentials: '', parameters: {}, pool, ...overrides });
  const domains = async () => (await virsh('list', '--all', '--name')).stdout.split('\n').filter(Boolean).sort();
  const volumes = async () => (await virsh('vol-list', '--pool', poolName)).stdout.split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/)[0]!).sort();

  beforeAll(async () => {
    dir = await mkdtemp('/var/tmp/h13-libvirt-test-');
    pool = new WorkerPool({ maxThreads: 1 });
    qcow2 = await makeQcow2(dir, 'disk', 8 * MiB);
    big = await makeQcow2(dir, 'big', 512 * MiB);
    expect((await virsh('pool-info', poolName)).code).not.toBe(0);
  });

  afterAll(async () => {
    await pool?.destroy();
    await virsh('pool-destroy', poolName);
    await virsh('pool-undefine', poolName);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('creates the missing pool, uploads the volume and defines (not starts) the domain; DELETE removes both', async () => {
    const before = await domains();
    const ctx = context();
    const result = await libvirtProvider.push(ctx);
    const name = `Debian-12-bookworm-${ctx.imageId.slice(0, 8)}`;
    expect(result.identifierOnProvider).toBe(name);
    expect(ctx.logs.some((l) => l.includes(`created storage pool ${poolName}`))).toBe(true);
    expect((await virsh('pool-info', poolName)).stdout).toMatch(/State:\s+running/);
    expect(result.resources).toEqual([
      { kind: 'libvirt-volume', id: `${name}.qcow2`, location: poolName },
      { kind: 'libvirt-domain', id: name },
    ]);
    expect((await virsh('domstate', name)).stdout.trim()).toBe('shut off');
    const xml = (await virsh('dumpxml', name)).stdout;
    expect(xml).toContain(`<source pool='${poolName}' volume='${name}.qcow2'/>`);
    expect(xml).toContain("<driver name='qemu' type='qcow2'/>");
    expect(xml).toContain('org.qemu.guest_agent.0');
    // The volume holds the image, byte for byte.
    const path = result.facts.volume_path as string;
    const sha = async (f: string) => createHash('sha256').update(await readFile(f)).digest('hex');
    expect(await sha(path)).toBe(await sha(qcow2));
    execFileSync('qemu-img', ['compare', qcow2, path]);

    // Pushing to the existing pool works as well (and does not create it again).
    const second = context();
    const again = await libvirtProvider.push(second);
    expect(second.logs.some((l) => l.includes('created storage pool'))).toBe(false);

    for (const r of [result, again]) await libvirtProvider.delete({ target: 'libvirt', provider: provider(), credentials: '', identifierOnProvider: r.identifierOnProvider });
    expect(await domains()).toEqual(before);
    expect(await volumes()).toEqual([]);
    await libvirtProvider.delete({ target: 'libvirt', provider: provider(), credentials: '', identifierOnProvider: result.identifierOnProvider });
  });

  it('a cancel during the upload kills vol-upload and leaves no volume and no domain', async () => {
    const before = await domains();
    const abort = new AbortController();
    const ctx = context({ file: big, signal: abort.signal });
    ctx.onProgress = (p) => {
      if (p.phase === 'uploading' && p.fraction === 0.05) setTimeout(() => abort.abort(), 150);
    };
    const error = await rejection(libvirtProvider.push(ctx));
    expect((error as ProviderError).code).toBe('cancelled');
    expect(ctx.recorded.map((r) => r.kind)).toEqual(['libvirt-volume']);
    expect(await volumes()).toEqual([]);
    expect(await domains()).toEqual(before);
    expect((await run('pgrep', ['-f', `vol-upload --sparse --pool ${poolName}`]).catch(() => ({ stdout: '' }))).stdout).toBe('');
    await libvirtProvider.cleanup({ target: 'libvirt', provider: provider(), credentials: '', resources: ctx.recorded });
  });

  it('reads the provider as a name, a URI or a document, with the default pool', () => {
    expect(libvirtAccess('libvirt')).toMatchObject({ uri: URI, pool: DEFAULT_POOL, poolPath: '/var/lib/libvirt/images/imagefactory', domainType: 'kvm' });
    expect(libvirtAccess('qemu:///session').uri).toBe('qemu:///session');
    expect(() => libvirtAccess('ec2-us-east-1')).toThrow(ProviderError);
    expect(() => libvirtAccess(JSON.stringify({ domain_type: 'xen' }))).toThrow(/domain_type/);
  });
});
