// The EC2 push against moto (EBS direct APIs + EC2), with moto checking credentials.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, open, readFile, readdir, rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { EBSClient, GetSnapshotBlockCommand, ListSnapshotBlocksCommand } from '@aws-sdk/client-ebs';
import { DescribeImagesCommand, DescribeSnapshotsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ec2Provider } from '../../../src/clouds/providers/ec2/index.js';
import { EBS_BLOCK_SIZE } from '../../../src/clouds/providers/ec2/ebs-upload.js';
import { ProviderError } from '../../../src/clouds/providers/errors.js';
import type { PushContext, PushResult } from '../../../src/clouds/providers/types.js';
import { WorkerPool } from '../../../src/pool/index.js';
import { describeWithTools, tool } from '../../tools.js';
import { startFaultProxy } from '../../../bench/providers/fault-proxy.js';
import { startMoto, type Moto } from '../../../bench/providers/moto.js';
import { makePushContext, rejection, type RecordingContext } from './push-context.js';

const BS = EBS_BLOCK_SIZE;
const MiB = 1024 * 1024;

describeWithTools([tool('moto_server', ['--help']), tool('qemu-img')], 'EC2 push (EBS direct APIs) against moto', () => {
  let dir: string;
  let moto: Moto;
  let pool: WorkerPool;
  let image: string;
  let expectedBlocks: Map<number, Buffer>;
  let ebs: EBSClient;
  let ec2: EC2Client;
  const contexts: RecordingContext[] = [];
  const errors: unknown[] = [];
  const results: PushResult[] = [];

  const credentialsXml = () =>
    `<provider_credentials><ec2_credentials><account_number>123456789012</account_number><access_key>${moto.accessKeyId}</access_key><secret_access_key>${moto.secretAccessKey}</secret_access_key></ec2_credentials></provider_credentials>`;
  const providerDoc = (endpoint = moto.url) => JSON.stringify({ name: 'ec2-us-east-1', endpoint });

  function context(overrides: Partial<PushContext> = {}): RecordingContext {
    const ctx = makePushContext({
      imageId: randomUUID(),
      target: 'ec2',
      file: image,
      templateName: 'debian-12',
      arch: 'x86_64',
      provider: providerDoc(),
      credentials: credentialsXml(),
      parameters: {},
      pool,
      options: { parallelRequests: 4, pollIntervalMs: 100, backoffBaseMs: 10, backoffMaxMs: 200 },
      ...overrides,
    });
    contexts.push(ctx);
    return ctx;
  }

  /** Our snapshots and AMIs in moto: those tagged with the push's image id. */
  async function leftovers(imageId: string): Promise<string[]> {
    const filter = [{ Name: 'tag:imagefactory:image-id', Values: [imageId] }];
    const snapshots = (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: filter }))).Snapshots ?? [];
    const images = (await ec2.send(new DescribeImagesCommand({ Owners: ['self'], Filters: filter }))).Images ?? [];
    return [...snapshots.map((s) => s.SnapshotId!), ...images.map((i) => i.ImageId!)];
  }
  const allSnapshots = async () => ((await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots ?? []).map((s) => s.SnapshotId!).sort();
  const allImages = async () => ((await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images ?? []).map((i) => i.ImageId!).sort();

  /** Every block of the snapshot, read back through the EBS direct APIs. */
  async function snapshotBlocks(snapshotId: string): Promise<Map<number, Buffer>> {
    const listed = await ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId }));
    const blocks = new Map<number, Buffer>();
    for (const block of listed.Blocks ?? []) {
      const got = await ebs.send(new GetSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: Number(block.BlockIndex), BlockToken: block.BlockToken! }));
      blocks.set(Number(block.BlockIndex), Buffer.from(await got.BlockData!.transformToByteArray()));
    }
    return blocks;
  }

  function expectSameBlocks(actual: Map<number, Buffer>): void {
    expect([...actual.keys()].sort((a, b) => a - b)).toEqual([...expectedBlocks.keys()].sort((a, b) => a - b));
    for (const [index, data] of expectedBlocks) expect(actual.get(index)!.equals(data), `block ${index}`).toBe(true);
  }

  beforeAll(async () => {
    dir = await mkdtemp('/var/tmp/h13-ec2-test-');
    moto = await startMoto(dir);
    pool = new WorkerPool({ maxThreads: 1 });
    const sdk = { region: 'us-east-1', endpoint: moto.url, credentials: { accessKeyId: moto.accessKeyId, secretAccessKey: moto.secretAccessKey } };
    ebs = new EBSClient(sdk);
    ec2 = new EC2Client(sdk);

    // A sparse raw image of 40 MiB + 100 KiB: whole blocks of data, a block with one small write,
    // a block with a single byte at its end, a block of zeros that is allocated (written), holes,
    // and a partial last block (EBS pads it with zeros).
    image = join(dir, 'disk.raw');
    const size = 40 * MiB + 100 * 1024;
    const handle = await open(image, 'w');
    await handle.write(randomBytes(BS), 0, BS, 0);
    await handle.write(randomBytes(4096), 0, 4096, 3 * BS + 1000);
    await handle.write(Buffer.alloc(BS), 0, BS, 5 * BS);
    await handle.write(randomBytes(4 * BS), 0, 4 * BS, 10 * BS);
    await handle.write(Buffer.from([0x5a]), 0, 1, 21 * BS - 1);
    await handle.write(randomBytes(100 * 1024), 0, 100 * 1024, 40 * MiB);
    await handle.close();
    await truncate(image, size);
    const bytes = await readFile(image);
    expectedBlocks = new Map();
    for (let i = 0; i * BS < size; i++) {
      const block = Buffer.alloc(BS);
      bytes.copy(block, 0, i * BS, Math.min(size, (i + 1) * BS));
      if (block.some((b) => b !== 0)) expectedBlocks.set(i, block);
    }
    expect([...expectedBlocks.keys()]).toEqual([0, 3, 10, 11, 12, 13, 20, 80]);
  }, 60_000);

  afterAll(async () => {
    ebs?.destroy();
    ec2?.destroy();
    await pool?.destroy();
    // No credential string in anything the tests produced: logs, progress, records, results, errors, moto's log.
    if (moto) {
      const produced = [
        JSON.stringify(contexts.map((c) => ({ logs: c.logs, progress: c.progressed, recorded: c.recorded }))),
        JSON.stringify(results),
        errors.map((e) => (e instanceof Error ? `${e.name} ${e.message} ${JSON.stringify((e as ProviderError).details ?? {})} ${e.stack ?? ''}` : String(e))).join('\n'),
      ].join('\n');
      await moto.stop();
      const serviceLogs = await Promise.all((await readdir(dir)).filter((f) => f.endsWith('.log')).map((f) => readFile(join(dir, f), 'utf8')));
      expect(produced.includes(moto.secretAccessKey)).toBe(false);
      expect(produced.includes(moto.accessKeyId)).toBe(false);
      for (const text of serviceLogs) expect(text.includes(moto.secretAccessKey)).toBe(false);
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('pushes an AMI whose snapshot holds exactly the image\'s non-zero blocks', async () => {
    const [snapshotsBefore, imagesBefore] = [await allSnapshots(), await allImages()];
    const ctx = context();
    const result = await ec2Provider.push(ctx);
    results.push(result);
    expect(result.identifierOnProvider).toMatch(/^ami-/);
    expect(result.providerAccountIdentifier).toBe('123456789012');
    const snapshotId = result.facts.snapshot_id as string;
    expect(result.resources).toEqual([
      { kind: 'ec2-snapshot', id: snapshotId },
      { kind: 'ec2-image', id: result.identifierOnProvider },
    ]);
    expect(ctx.recorded).toEqual(result.resources);

    const images = (await ec2.send(new DescribeImagesCommand({ ImageIds: [result.identifierOnProvider] }))).Images ?? [];
    expect(images).toHaveLength(1);
    expect(images[0]!.Name).toBe(`debian-12 ${ctx.imageId}`);
    // (moto keeps neither the architecture nor the block-device mapping RegisterImage is given.)
    expect(images[0]!.Tags).toContainEqual({ Key: 'imagefactory:image-id', Value: ctx.imageId });
    const snapshot = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }))).Snapshots![0]!;
    expect(snapshot.State).toBe('completed');
    expect(snapshot.VolumeSize).toBe(1);
    expect(snapshot.Tags).toContainEqual({ Key: 'imagefactory:image-id', Value: ctx.imageId });

    expectSameBlocks(await snapshotBlocks(snapshotId));

    // Zero blocks were never sent: exactly the data blocks went over the wire, once each.
    expect(result.facts.blocks_sent).toBe(expectedBlocks.size);
    expect(result.facts.blocks_total).toBe(81);
    expect(result.facts.blocks_skipped).toBe(81 - expectedBlocks.size);
    expect(result.facts.bytes_sent).toBe(expectedBlocks.size * BS);
    const linear = createHash('sha256');
    for (const index of [...expectedBlocks.keys()]) linear.update(createHash('sha256').update(expectedBlocks.get(index)!).digest());
    expect(result.facts.linear_checksum).toBe(linear.digest('base64'));

    const last = ctx.progressed.at(-1)!;
    expect(last.fraction).toBe(1);
    const uploading = ctx.progressed.filter((p) => p.phase === 'uploading').at(-1)!;
    expect(uploading.counters).toEqual({ blocksSent: 8, blocksSkipped: 73, blocksTotal: 81, bytesSent: 8 * BS });
    const fractions = ctx.progressed.map((p) => p.fraction);
    expect(fractions).toEqual([...fractions].sort((a, b) => a - b));

    // DELETE of the provider image: the AMI and every snapshot of it are gone.
    await ec2Provider.delete({ target: 'ec2', provider: providerDoc(), credentials: credentialsXml(), identifierOnProvider: result.identifierOnProvider, resources: result.resources });
    expect(await leftovers(ctx.imageId)).toEqual([]);
    expect(await allImages()).toEqual(imagesBefore);
    expect(await allSnapshots()).toEqual(snapshotsBefore);
    // A second delete finds nothing and is fine.
    await ec2Provider.delete({ target: 'ec2', provider: providerDoc(), credentials: credentialsXml(), identifierOnProvider: result.identifierOnProvider });
  });

  it('completes under throttling, 500s, a dropped connection and a response slower than the request timeout', async () => {
    const proxy = await startFaultProxy(moto.url, { slowMs: 1500 });
    const faults = ['throttle', 'server-error', 'drop', 'slow'] as const;
    let blockPuts = 0;
    proxy.plan = ({ method, path }) => {
      if (method === 'PUT' && /\/blocks\/\d+$/.test(path)) {
        blockPuts++;
        // The 2nd, 3rd, 4th and 5th block requests fail once each, one kind each.
        return blockPuts >= 2 && blockPuts <= 5 ? faults[blockPuts - 2] : undefined;
      }
      // The first StartSnapshot is throttled too.
      if (method === 'POST' && path === '/snapshots' && proxy.counts.passed === 0 && proxy.counts.throttle === 0) return 'throttle';
      return undefined;
    };
    try {
      const ctx = context({ provider: providerDoc(proxy.url), options: { parallelRequests: 2, requestTimeoutMs: 700, pollIntervalMs: 100, backoffBaseMs: 10, backoffMaxMs: 100 } });
      const result = await ec2Provider.push(ctx);
      results.push(result);
      expect(proxy.counts).toMatchObject({ throttle: 2, 'server-error': 1, drop: 1, slow: 1 });
      expect(ctx.logs.filter((l) => /retrying in/.test(l)).length).toBeGreaterThanOrEqual(5);
      expectSameBlocks(await snapshotBlocks(result.facts.snapshot_id as string));
      await ec2Provider.delete({ target: 'ec2', provider: providerDoc(), credentials: credentialsXml(), identifierOnProvider: result.identifierOnProvider });
      expect(await leftovers(ctx.imageId)).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });

  it('ends throttled when the throttling never stops, and leaves no snapshot', async () => {
    const proxy = await startFaultProxy(moto.url, { slowMs: 0 });
    proxy.plan = ({ method, path }) => (method === 'PUT' && /\/blocks\/\d+$/.test(path) ? 'throttle' : undefined);
    try {
      const before = await allSnapshots();
      const ctx = context({ provider: providerDoc(proxy.url), options: { parallelRequests: 2, attempts: 3, pollIntervalMs: 100, backoffBaseMs: 5, backoffMaxMs: 20 } });
      const error = await rejection(ec2Provider.push(ctx));
      errors.push(error);
      expect(error).toBeInstanceOf(ProviderError);
      expect((error as ProviderError).code).toBe('throttled');
      expect(ctx.recorded.map((r) => r.kind)).toEqual(['ec2-snapshot']);
      expect(await leftovers(ctx.imageId)).toEqual([]);
      expect(await allSnapshots()).toEqual(before);
    } finally {
      await proxy.stop();
    }
  });

  it('a cancel mid-upload leaves no snapshot and no AMI', async () => {
    const proxy = await startFaultProxy(moto.url, { slowMs: 0 });
    try {
      const beforeSnapshots = await allSnapshots();
      const beforeImages = await allImages();
      const abort = new AbortController();
      // Slow each block a little so that the cancel lands mid-upload.
      proxy.plan = () => undefined;
      const ctx = context({ provider: providerDoc(proxy.url), signal: abort.signal, options: { parallelRequests: 1, pollIntervalMs: 100 } });
      ctx.onProgress = (p) => {
        if ((p.counters?.blocksSent ?? 0) >= 2) abort.abort();
      };
      const error = await rejection(ec2Provider.push(ctx));
      errors.push(error);
      expect((error as ProviderError).code).toBe('cancelled');
      const sentAtCancel = ctx.progressed.filter((p) => p.counters).at(-1)!.counters!.blocksSent;
      expect(sentAtCancel).toBeLessThan(expectedBlocks.size);
      expect(ctx.recorded.map((r) => r.kind)).toEqual(['ec2-snapshot']);
      expect(await leftovers(ctx.imageId)).toEqual([]);
      expect(await allSnapshots()).toEqual(beforeSnapshots);
      expect(await allImages()).toEqual(beforeImages);
      // The engine's undo may run cleanup again: safe.
      await ec2Provider.cleanup({ target: 'ec2', provider: providerDoc(), credentials: credentialsXml(), resources: ctx.recorded });
    } finally {
      await proxy.stop();
    }
  });

  it('a failure after the AMI was registered deregisters it and deletes the snapshot', async () => {
    const proxy = await startFaultProxy(moto.url, { slowMs: 0 });
    proxy.plan = ({ body }) => (body.toString('latin1').includes('Action=CreateTags') ? 'server-error' : undefined);
    try {
      const beforeSnapshots = await allSnapshots();
      const beforeImages = await allImages();
      const ctx = context({ provider: providerDoc(proxy.url), options: { attempts: 2, pollIntervalMs: 100, backoffBaseMs: 5, backoffMaxMs: 20 } });
      const error = await rejection(ec2Provider.push(ctx));
      errors.push(error);
      expect((error as ProviderError).code).toBe('provider_error');
      expect(proxy.counts['server-error']).toBe(2);
      expect(ctx.recorded.map((r) => r.kind)).toEqual(['ec2-snapshot', 'ec2-image']);
      expect(ctx.logs.some((l) => l.startsWith('removing what the push made'))).toBe(true);
      expect(await allImages()).toEqual(beforeImages);
      expect(await allSnapshots()).toEqual(beforeSnapshots);
    } finally {
      await proxy.stop();
    }
  });

  it('wrong credentials end auth_failed, with no credential in the error', async () => {
    const before = await allSnapshots();
    const wrongSecret = `wrong-${randomBytes(12).toString('hex')}`;
    const ctx = context({ credentials: JSON.stringify({ access_key: moto.accessKeyId, secret_access_key: wrongSecret }) });
    const error = await rejection(ec2Provider.push(ctx));
    errors.push(error);
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).code).toBe('auth_failed');
    const shown = `${(error as Error).message} ${JSON.stringify((error as ProviderError).details)} ${(error as Error).stack}`;
    expect(shown).not.toContain(wrongSecret);
    expect(shown).not.toContain(moto.accessKeyId);
    expect((error as { cause?: unknown }).cause).toBeUndefined();
    expect(await allSnapshots()).toEqual(before);

    const unknownKey = context({ credentials: JSON.stringify({ access_key: 'AKIAUNKNOWNUNKNOWN00', secret_access_key: wrongSecret }) });
    const error2 = await rejection(ec2Provider.push(unknownKey));
    errors.push(error2);
    expect((error2 as ProviderError).code).toBe('auth_failed');
  });

  it('refuses snapshot-style builds as not_supported, and unreadable documents with their codes', async () => {
    const snapshotBuild = await rejection(ec2Provider.push(context({ parameters: { snapshot: true } })));
    expect((snapshotBuild as ProviderError).code).toBe('not_supported');
    const badProvider = await rejection(ec2Provider.push(context({ provider: 'ec2-nowhere' })));
    expect((badProvider as ProviderError).code).toBe('invalid_provider');
    const badCredentials = await rejection(ec2Provider.push(context({ credentials: '<provider_credentials><ec2_credentials><access_key>x</access_key>' })));
    expect((badCredentials as ProviderError).code).toBe('invalid_credentials');
    const qcow2 = join(dir, 'disk.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', qcow2, '1M']);
    const notRaw = await rejection(ec2Provider.push(context({ file: qcow2 })));
    expect((notRaw as ProviderError).code).toBe('input_invalid');
    const missingSecret = await rejection(ec2Provider.push(context({ credentials: '<provider_credentials><ec2_credentials><access_key>AKIAXX</access_key></ec2_credentials></provider_credentials>' })));
    expect((missingSecret as ProviderError).code).toBe('invalid_credentials');
    expect((missingSecret as Error).message).not.toContain('AKIAXX');
    errors.push(snapshotBuild, badProvider, badCredentials, notRaw, missingSecret);
  });
});
