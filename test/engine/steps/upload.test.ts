import { afterEach, describe, expect, it } from 'vitest';
import { upload } from '../../../src/engine/steps/upload.js';
import { newImageRecord } from '../../../src/model/index.js';
import { recordingPush } from './cloud-fakes.js';
import { stepTestEnv } from './env.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

const CREDENTIALS = '<provider_credentials><ec2_credentials><access_key>AKIA-STEP-TEST</access_key><secret_access_key>never-stored</secret_access_key></ec2_credentials></provider_credentials>';
const target = newImageRecord('0b8f1d2e-3c4a-4b5c-8d6e-7f8091a2b3c4', 'TargetImage', new Date(), {
  status: 'COMPLETE',
  target: 'ec2',
  bodyPath: '/warehouse/target.body',
  parameters: { ec2_flatten: true, boot_mode: 'legacy-bios' },
});

function providerEnv(opts: Parameters<typeof stepTestEnv>[0] & { push?: ReturnType<typeof recordingPush> } = {}) {
  const fake = opts.push ?? recordingPush();
  const t = stepTestEnv({
    parent: target,
    credentials: CREDENTIALS,
    providers: () => fake.push,
    ...opts,
    image: { kind: 'ProviderImage', target: 'ec2', provider: '{"name":"ec2-us-east-1","endpoint":"http://127.0.0.1:1"}', targetImageId: target.id, parameters: { boot_mode: 'uefi' }, ...opts.image },
  });
  cleanups.push(t.cleanup);
  return { ...t, fake };
}

describe('the upload step', () => {
  it('pushes the target body with the provider, the in-memory credentials, the template and the push options, and records the result', async () => {
    const t = providerEnv();
    const signal = new AbortController().signal;
    await upload.run(t.env, signal);
    const ctx = t.fake.pushed[0]!;
    expect(ctx).toMatchObject({
      imageId: t.env.id,
      target: 'ec2',
      file: '/warehouse/target.body',
      templateName: 'step-test',
      arch: 'x86_64',
      provider: '{"name":"ec2-us-east-1","endpoint":"http://127.0.0.1:1"}',
      credentials: CREDENTIALS,
      // The provider image's own parameters win over its target's.
      parameters: { ec2_flatten: true, boot_mode: 'uefi' },
      signal,
      options: { parallelRequests: 3 },
    });
    expect(t.image()).toMatchObject({
      identifierOnProvider: 'ami-1',
      providerAccountIdentifier: '123456789012',
      properties: { provider_resources: [{ kind: 'ec2-snapshot', id: 'snap-1' }, { kind: 'ec2-image', id: 'ami-1' }], push: { snapshot_id: 'snap-1', blocks_sent: 3 } },
    });
    expect(JSON.stringify(t.image())).not.toContain('never-stored');
    expect(t.logs.join('\n')).not.toContain('never-stored');
  });

  it('writes each resource to the record the moment the push reports it', async () => {
    let t: ReturnType<typeof providerEnv> | undefined;
    const fake = recordingPush({ onRecord: () => t!.image().properties.provider_resources });
    t = providerEnv({ push: fake });
    await upload.run(t.env, new AbortController().signal);
    expect(fake.seenDuringPush()).toEqual([{ kind: 'ec2-snapshot', id: 'snap-1' }]);
  });

  it('feeds the push\'s progress into its range, at most once a second, and shows the registering phase', async () => {
    const t = providerEnv({ push: recordingPush({ progressEvents: 500 }) });
    await upload.run(t.env, new AbortController().signal);
    expect(t.progress.length).toBeLessThan(6);
    expect(t.progress[0]![0]).toBeCloseTo(0.18);
    expect(t.progress[0]![1]).toBe('Sent 1 blocks');
    expect(t.progress.map(([, a]) => a)).toContain('Registering the AMI');
    expect(t.progress.at(-1)).toEqual([100, 'Registered']);
  });

  it('fails credentials_lost without its credentials (a restored build), before touching the provider', async () => {
    const t = providerEnv({ credentials: null });
    await expect(upload.run(t.env, new AbortController().signal)).rejects.toMatchObject({ code: 'credentials_lost' });
    expect(t.fake.pushed).toEqual([]);
  });

  it('passes the push\'s failure on with its code', async () => {
    const t = providerEnv({ push: recordingPush({ failWith: 'EC2 said no' }) });
    await expect(upload.run(t.env, new AbortController().signal)).rejects.toMatchObject({ code: 'provider_error', message: 'EC2 said no' });
  });

  it('undoes through the provider\'s cleanup with the recorded resources; safe twice; nothing recorded, nothing to do', async () => {
    const t = providerEnv();
    await upload.run(t.env, new AbortController().signal);
    expect([...t.fake.live].sort()).toEqual(['ami-1', 'snap-1']);
    await upload.undo(t.env);
    await upload.undo(t.env);
    expect(t.fake.cleaned).toHaveLength(1);
    expect(t.fake.cleaned[0]).toMatchObject({ target: 'ec2', provider: '{"name":"ec2-us-east-1","endpoint":"http://127.0.0.1:1"}', credentials: CREDENTIALS, resources: [{ kind: 'ec2-snapshot', id: 'snap-1' }, { kind: 'ec2-image', id: 'ami-1' }] });
    expect(t.fake.live.size).toBe(0);
    expect(t.image()).toMatchObject({ identifierOnProvider: null, properties: { provider_resources: [], removed_from_provider: [{ id: 'snap-1' }, { id: 'ami-1' }] } });
  });

  it('cannot undo without credentials: it says what is left on the provider', async () => {
    const t = providerEnv({ credentials: null, image: { properties: { provider_resources: [{ kind: 'ec2-snapshot', id: 'snap-9' }] } } });
    await expect(upload.undo(t.env)).rejects.toMatchObject({ code: 'credentials_lost', message: expect.stringContaining('ec2-snapshot snap-9'), details: { left_on_provider: [{ kind: 'ec2-snapshot', id: 'snap-9' }] } });
  });

  it('covers 0–90 % of a provider build, needs the credentials, and does not resume after a restart', async () => {
    const t = providerEnv();
    expect(upload.progress).toEqual([0, 90]);
    expect(upload.needsCredentials).toBe(true);
    expect(await upload.canResume(t.env)).toBe(false);
  });
});
