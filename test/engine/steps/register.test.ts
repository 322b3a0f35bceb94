import { afterEach, describe, expect, it } from 'vitest';
import { register } from '../../../src/engine/steps/register.js';
import { stepTestEnv } from './env.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function providerEnv(image: NonNullable<Parameters<typeof stepTestEnv>[0]>['image'] = {}) {
  const t = stepTestEnv({ image: { kind: 'ProviderImage', target: 'ec2', ...image } });
  cleanups.push(t.cleanup);
  return t;
}

describe('the register step', () => {
  it('checks the push published the image and recorded the resource behind it', async () => {
    const t = providerEnv({ identifierOnProvider: 'ami-1', properties: { provider_resources: [{ kind: 'ec2-snapshot', id: 'snap-1' }, { kind: 'ec2-image', id: 'ami-1' }] } });
    await register.run(t.env, new AbortController().signal);
    expect(t.progress.at(-1)).toEqual([100, 'Registered on the provider as ami-1']);
    // A registry's identifier holds the manifest digest it recorded.
    const oci = providerEnv({ identifierOnProvider: '127.0.0.1:5000/app@sha256:abc', properties: { provider_resources: [{ kind: 'registry-manifest', id: 'sha256:abc' }] } });
    await register.run(oci.env, new AbortController().signal);
  });

  it('fails push_incomplete without an identifier, or with one it has no record of', async () => {
    await expect(register.run(providerEnv().env, new AbortController().signal)).rejects.toMatchObject({ code: 'push_incomplete' });
    const unrecorded = providerEnv({ identifierOnProvider: 'ami-2', properties: { provider_resources: [{ kind: 'ec2-snapshot', id: 'snap-1' }] } });
    await expect(register.run(unrecorded.env, new AbortController().signal)).rejects.toMatchObject({ code: 'push_incomplete', message: expect.stringContaining('ec2-snapshot snap-1') });
  });

  it('covers 90–100 %, resumes after a restart (it needs no credentials) and leaves the undo to upload', async () => {
    const t = providerEnv();
    expect(register.progress).toEqual([90, 100]);
    expect(register.needsCredentials).toBeUndefined();
    expect(await register.canResume(t.env)).toBe(true);
    await register.undo(t.env);
  });
});
