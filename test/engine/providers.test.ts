import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startFaultProxy } from '../../bench/providers/fault-proxy.js';
import { startMoto, type Moto } from '../../bench/providers/moto.js';
import { BUILTIN_PUSHES, SHIPPED_PLUGINS } from '../../src/compose.js';
import type { ProviderPush } from '../../src/clouds/providers/types.js';
import type { ProviderPushes } from '../../src/engine/deps.js';
import type { Engine } from '../../src/engine/engine.js';
import { motoCredentialsXml, motoReader, nonZeroBlockHashes, type MotoReader } from '../clouds/providers/moto-readback.js';
import { describeWithTools, tool } from '../tools.js';
import { recordingPush } from './steps/cloud-fakes.js';
import { TEST_PLUGINS, testEngine, testTemplate, waitFor, waitForPhase } from './helpers.js';

/**
 * Provider builds through the engine: the EC2 push against moto (a real
 * EBS + EC2 emulator that checks signatures) from the test OS plugin's
 * small raw disks made into `ec2` targets without modifications; the
 * restart cases with a recording push that can be stopped half-way.
 */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

let dir: string;
let moto: Moto;
let reader: MotoReader;
const PUSH = { parallelRequests: 2, pollIntervalMs: 100, backoffBaseMs: 10, backoffMaxMs: 100 };
const EC2_TARGET = { skip_ec2_modifications: true };

async function started(more: Parameters<typeof testEngine>[0] = {}, assemble: Parameters<typeof testEngine>[1] = {}) {
  const t = await testEngine({ pluginDirs: [TEST_PLUGINS, SHIPPED_PLUGINS], timeoutSeconds: 120, push: PUSH, ...more }, assemble);
  cleanups.push(() => t.cleanup());
  return t;
}

/** The engine's pushes: this one for ec2. */
const pushes = (push: ProviderPush): ProviderPushes => ({ targets: ['ec2'], load: async () => push });

const deleted = (engine: Engine, id: string) => new Promise<void>((resolve) => engine.subscribe((e) => e.type === 'deleted' && e.image.id === id && resolve()));
const providerDoc = (endpoint = moto.url) => JSON.stringify({ name: 'ec2-us-east-1', endpoint });

/** Every file under `root`, for grepping. */
function filesUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' }).map((f) => join(root, f)).filter((f) => statSync(f).isFile());
}

describeWithTools([tool('moto_server', ['--help']), tool('qemu-img')], 'provider builds through the engine', () => {
  beforeAll(async () => {
    mkdirSync('/var/tmp/wire', { recursive: true });
    dir = mkdtempSync('/var/tmp/wire/engine-providers-');
    moto = await startMoto(dir);
    reader = motoReader(moto);
  }, 60_000);
  afterAll(async () => {
    reader?.destroy();
    await moto?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('builds base → target → provider from one request, each its own machine; the AMI\'s snapshot holds the target\'s non-zero blocks; DELETE removes it', async () => {
    const t = await started();
    const { engine } = t;
    const [snapshotsBefore, imagesBefore] = [await reader.snapshots(), await reader.images()];
    const credentials = motoCredentialsXml(moto);
    const submitted = engine.submitProviderImage({ target: 'ec2', provider: providerDoc(), credentials, template: testTemplate('ok'), parameters: EC2_TARGET });
    expect(submitted).toMatchObject({ status: 'PENDING', phase: 'waiting_for_target', target: 'ec2', provider: providerDoc() });
    const done = await waitFor(engine, submitted.id, ['COMPLETE', 'FAILED'], 60_000);
    expect(done.error).toBeNull();
    const target = engine.getImage(done.targetImageId!)!;
    const base = engine.getImage(target.baseImageId!)!;
    expect(done.baseImageId).toBe(base.id);
    expect([base.status, target.status]).toEqual(['COMPLETE', 'COMPLETE']);
    expect(engine.transitions(done.id).map((x) => x.to)).toEqual(['waiting_for_target', 'queued', 'uploading', 'registering', 'complete']);
    expect(engine.transitions(target.id).map((x) => x.to)).toEqual(['waiting_for_base', 'queued', 'adapting', 'converting', 'complete']);

    expect(done.identifierOnProvider).toMatch(/^ami-/);
    expect(done.providerAccountIdentifier).toBe('123456789012');
    const snapshotId = (done.properties.push as { snapshot_id: string }).snapshot_id;
    expect(done.properties.provider_resources).toEqual([
      { kind: 'ec2-snapshot', id: snapshotId },
      { kind: 'ec2-image', id: done.identifierOnProvider },
    ]);
    expect(await reader.images()).toEqual([...imagesBefore, done.identifierOnProvider!].sort());
    expect(await reader.snapshotBlockHashes(snapshotId)).toEqual(await nonZeroBlockHashes(target.bodyPath!));

    // Credentials live in memory only: no file of the warehouse holds them (catalog, its WAL, logs).
    for (const file of filesUnder(t.opts.storagePath)) {
      const text = readFileSync(file, 'latin1');
      expect(text.includes(moto.secretAccessKey), file).toBe(false);
      expect(text.includes(moto.accessKeyId), file).toBe(false);
    }

    // DELETE with wrong credentials fails on the provider and keeps the record; with the right ones, nothing is left.
    engine.deleteImage(done.id, { provider: providerDoc(), credentials: credentials.replace(moto.secretAccessKey, 'not-the-secret') });
    const refused = await waitFor(engine, done.id, ['DELETEFAILED']);
    expect(refused.error).toMatchObject({ code: 'auth_failed' });
    expect(JSON.stringify(refused)).not.toContain('not-the-secret');
    const gone = deleted(engine, done.id);
    engine.deleteImage(done.id, { provider: providerDoc(), credentials });
    await gone;
    expect(await reader.taggedWith(done.id)).toEqual([]);
    expect(await reader.images()).toEqual(imagesBefore);
    expect(await reader.snapshots()).toEqual(snapshotsBefore);
  }, 90_000);

  it('loads the shipped push of every target it names, each serving that target', async () => {
    for (const target of BUILTIN_PUSHES.targets) expect((await BUILTIN_PUSHES.load(target)).targets, target).toContain(target);
    await expect(BUILTIN_PUSHES.load('vsphere')).rejects.toMatchObject({ code: 'not_supported' });
  });

  it('refuses a provider image of another target than its target image\'s, and a target no push serves, before any work', async () => {
    const { engine } = await started();
    const target = await waitFor(engine, engine.submitTargetImage({ target: 'qcow2', template: testTemplate('ok') }).id, ['COMPLETE']);
    expect(() => engine.submitProviderImage({ target: 'ec2', provider: providerDoc(), credentials: 'x', targetImageId: target.id })).toThrowError(expect.objectContaining({ code: 'bad_request' }));
    expect(() => engine.submitProviderImage({ target: 'qcow2', provider: providerDoc(), credentials: 'x', targetImageId: target.id })).toThrowError(expect.objectContaining({ code: 'not_supported' }));
  });

  it('ends auth_failed with wrong credentials and leaves nothing in moto', async () => {
    const { engine } = await started();
    const snapshotsBefore = await reader.snapshots();
    const wrong = motoCredentialsXml({ ...moto, secretAccessKey: 'wrong-secret-key' });
    const done = await waitFor(engine, engine.submitProviderImage({ target: 'ec2', provider: providerDoc(), credentials: wrong, template: testTemplate('ok'), parameters: EC2_TARGET }).id, ['COMPLETE', 'FAILED'], 60_000);
    expect(done.error).toMatchObject({ code: 'auth_failed' });
    expect(JSON.stringify(done)).not.toContain('wrong-secret-key');
    expect(readFileSync(engine.logPath(done.id)!, 'utf8')).not.toContain('wrong-secret-key');
    expect(await reader.snapshots()).toEqual(snapshotsBefore);
  }, 90_000);

  it('a cancel mid-upload ends CANCELLED with nothing left in moto, after progress was shown', async () => {
    const proxy = await startFaultProxy(moto.url, { slowMs: 1500, plan: ({ method, path }) => (method === 'PUT' && /\/blocks\/\d+$/.test(path) ? 'slow' : undefined) });
    cleanups.push(() => proxy.stop());
    const { engine } = await started({ push: { ...PUSH, parallelRequests: 1 } });
    const target = await waitFor(engine, engine.submitTargetImage({ target: 'ec2', template: testTemplate('ok'), parameters: EC2_TARGET }).id, ['COMPLETE']);
    const [snapshotsBefore, imagesBefore] = [await reader.snapshots(), await reader.images()];
    const image = engine.submitProviderImage({ target: 'ec2', provider: providerDoc(proxy.url), credentials: motoCredentialsXml(moto), targetImageId: target.id });
    await new Promise<void>((resolve) => {
      const off = engine.subscribe((e) => {
        if (e.image.id === image.id && e.image.phase === 'uploading' && e.image.percentComplete > 0) {
          off();
          resolve();
        }
      });
    });
    const uploading = engine.getImage(image.id)!;
    expect(uploading.activity).toMatch(/block/i);
    expect(uploading.properties.provider_resources).toEqual([{ kind: 'ec2-snapshot', id: expect.stringMatching(/^snap-/) }]);
    engine.cancel(image.id);
    const done = await waitFor(engine, image.id, ['CANCELLED', 'FAILED'], 30_000);
    expect(done.status).toBe('CANCELLED');
    expect(done.properties.removed_from_provider).toEqual(uploading.properties.provider_resources);
    expect(await reader.snapshots()).toEqual(snapshotsBefore);
    expect(await reader.images()).toEqual(imagesBefore);
  }, 90_000);

  it('a restart mid-push ends the build credentials_lost, naming what is left; a DELETE with credentials removes it', async () => {
    const fake = recordingPush({ waitForAbort: true, keepOnAbort: true });
    const t = await started({}, { replace: { providers: pushes(fake.push) } });
    const target = await waitFor(t.engine, t.engine.submitTargetImage({ target: 'ec2', template: testTemplate('ok'), parameters: EC2_TARGET }).id, ['COMPLETE']);
    const image = t.engine.submitProviderImage({ target: 'ec2', provider: 'ec2-us-east-1', credentials: 'SECRET-CREDENTIALS', targetImageId: target.id });
    await waitForPhase(t.engine, image.id, 'uploading');
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.live).toEqual(new Set(['snap-1']));
    await t.engine.shutdown();

    const again = await t.restart({}, { replace: { providers: pushes(fake.push) } });
    cleanups.push(() => again.shutdown());
    const failed = again.getImage(image.id)!;
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatchObject({
      code: 'credentials_lost',
      message: expect.stringContaining('cannot be removed without them: ec2-snapshot snap-1 (EC2 also deletes an EBS snapshot left pending after 60 minutes). DELETE this image with provider and credentials'),
      details: { left_on_provider: [{ kind: 'ec2-snapshot', id: 'snap-1' }] },
    });
    expect(again.transitions(image.id).at(-1)).toMatchObject({ from: 'uploading', to: 'failed', event: 'credentials_lost' });

    const gone = deleted(again, image.id);
    again.deleteImage(image.id, { credentials: 'SECRET-CREDENTIALS' });
    await gone;
    expect(fake.cleaned).toEqual([expect.objectContaining({ target: 'ec2', provider: 'ec2-us-east-1', credentials: 'SECRET-CREDENTIALS', resources: [{ kind: 'ec2-snapshot', id: 'snap-1' }] })]);
    expect(fake.live.size).toBe(0);
    for (const file of filesUnder(t.opts.storagePath)) expect(readFileSync(file, 'latin1').includes('SECRET-CREDENTIALS'), file).toBe(false);
  });

  it('a restart before the push fails the provider build credentials_lost at once; its base and target go on', async () => {
    const fake = recordingPush();
    const t = await started({}, { replace: { providers: pushes(fake.push) } });
    const image = t.engine.submitProviderImage({ target: 'ec2', provider: 'ec2-us-east-1', credentials: 'c', template: testTemplate('slow'), parameters: EC2_TARGET });
    await waitForPhase(t.engine, image.baseImageId!, 'installing');
    await t.engine.shutdown();
    const again = await t.restart({}, { replace: { providers: pushes(fake.push) } });
    cleanups.push(() => again.shutdown());
    expect(again.getImage(image.id)).toMatchObject({ status: 'FAILED', error: { code: 'credentials_lost', message: expect.stringContaining('nothing had been created on the provider') } });
    expect((await waitFor(again, image.targetImageId!, ['COMPLETE', 'FAILED'])).status).toBe('COMPLETE');
    expect(fake.pushed).toEqual([]);
  });

  it('a restart in the middle of a DELETE from the provider keeps the record, DELETEFAILED credentials_lost', async () => {
    const fake = recordingPush({ deleteHangs: true });
    const t = await started({}, { replace: { providers: pushes(fake.push) } });
    const image = await waitFor(t.engine, t.engine.submitProviderImage({ target: 'ec2', provider: 'ec2-us-east-1', credentials: 'c', template: testTemplate('ok'), parameters: EC2_TARGET }).id, ['COMPLETE']);
    t.engine.deleteImage(image.id, { credentials: 'c' });
    await waitFor(t.engine, image.id, ['DELETING']);
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.deleted).toHaveLength(1);
    await t.engine.shutdown();
    const again = await t.restart({}, { replace: { providers: pushes(fake.push) } });
    cleanups.push(() => again.shutdown());
    expect(again.getImage(image.id)).toMatchObject({ status: 'DELETEFAILED', identifierOnProvider: 'ami-1', error: { code: 'credentials_lost' } });
  });
});
