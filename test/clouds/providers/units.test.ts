// The provider pushes' pure parts: documents, scrubbing, retries, block arithmetic, AWS error meaning.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readCredentials, readProviderDocument } from '../../../src/clouds/providers/documents.js';
import { ec2Access } from '../../../src/clouds/providers/ec2/access.js';
import { classifyAwsFailure } from '../../../src/clouds/providers/ec2/aws-errors.js';
import { linearChecksum } from '../../../src/clouds/providers/ec2/ebs-upload.js';
import { amiBootMode, amiName } from '../../../src/clouds/providers/ec2/register.js';
import { blocksTouched } from '../../../src/clouds/providers/ec2/sparse-map.js';
import { ProviderError } from '../../../src/clouds/providers/errors.js';
import { providerFor } from '../../../src/clouds/providers/index.js';
import { registryAccess } from '../../../src/clouds/providers/registry/access.js';
import { backoff, retrying, type Verdict } from '../../../src/clouds/providers/retry.js';
import { SCRUBBED, Secrets } from '../../../src/clouds/providers/secrets.js';

const code = (f: () => unknown) => {
  try {
    f();
  } catch (error) {
    return (error as ProviderError).code;
  }
  return 'no error';
};

describe('provider and credentials documents', () => {
  it('reads the original\'s EC2 credentials XML and the same as JSON', () => {
    const xml = '<provider_credentials><ec2_credentials><account_number>1234</account_number><access_key>AK</access_key><secret_access_key>S/K+</secret_access_key><certificate>C</certificate><key>K</key></ec2_credentials></provider_credentials>';
    expect(readCredentials(xml, 'ec2')).toEqual({ account_number: '1234', access_key: 'AK', secret_access_key: 'S/K+', certificate: 'C', key: 'K' });
    expect(readCredentials('{"ec2_credentials":{"access_key":"AK","secret_access_key":"SK"}}', 'ec2')).toEqual({ access_key: 'AK', secret_access_key: 'SK' });
    expect(readCredentials('{"access_key":"AK","secret_access_key":"SK"}', 'ec2')).toEqual({ access_key: 'AK', secret_access_key: 'SK' });
  });

  it('refuses unreadable credentials without quoting them', () => {
    const secret = 'TOPSECRETVALUE';
    for (const text of [`<provider_credentials><ec2_credentials><access_key>${secret}`, `{"access_key": "${secret}"`, `plain ${secret}`, '<provider_credentials/>']) {
      try {
        readCredentials(text, 'ec2');
        expect.unreachable();
      } catch (error) {
        expect((error as ProviderError).code).toBe('invalid_credentials');
        expect((error as Error).message).not.toContain(secret);
      }
    }
  });

  it('reads providers as names (with the command line\'s @) or documents', () => {
    expect(readProviderDocument('@ec2-us-east-1')).toEqual({ name: 'ec2-us-east-1', fields: {} });
    expect(readProviderDocument('{"name":"ec2-eu-west-1","endpoint":"http://x"}')).toEqual({ name: 'ec2-eu-west-1', fields: { name: 'ec2-eu-west-1', endpoint: 'http://x' } });
    expect(readProviderDocument('<provider><region>eu-west-1</region></provider>').fields).toEqual({ region: 'eu-west-1' });
    expect(ec2Access('ec2-ap-southeast-2', '{"access_key":"AK1","secret_access_key":"SK1"}').region).toBe('ap-southeast-2');
    expect(ec2Access('{"region":"us-west-2","endpoint":"http://127.0.0.1:1"}', '{"access_key":"AK1","secret_access_key":"SK1"}')).toMatchObject({ region: 'us-west-2', endpoint: 'http://127.0.0.1:1', ebsEndpoint: 'http://127.0.0.1:1' });
    expect(ec2Access('{"name":"ec2-us-east-1","encrypted":true,"kms_key_arn":"arn:aws:kms:k"}', '{"access_key":"A1","secret_access_key":"S1"}').encryption).toEqual({ encrypted: true, kmsKeyArn: 'arn:aws:kms:k' });
    expect(code(() => ec2Access('{"name":"ec2-us-east-1","encrypted":"yes"}', '{}'))).toBe('invalid_provider');
    expect(code(() => ec2Access('ec2', '{}'))).toBe('invalid_provider');
    expect(code(() => ec2Access('{"region":"us-east-1","endpoint":"ftp://x"}', '{}'))).toBe('invalid_provider');
  });

  it('takes the docker target\'s repository and tag parameters over the provider document', () => {
    const access = registryAccess('{"registry":"http://127.0.0.1:5000","repository":"doc/repo","tag":"doc"}', '', { repository: 'Param/Repo', tag: 'v1' });
    expect(access).toMatchObject({ location: { baseUrl: 'http://127.0.0.1:5000', host: '127.0.0.1:5000', repository: 'param/repo' }, tag: 'v1' });
    expect(registryAccess('registry.example.com', '', {}, 'Debian 12').location).toEqual({ baseUrl: 'https://registry.example.com', host: 'registry.example.com', repository: 'debian-12' });
    expect(code(() => registryAccess('r.example', '', { tag: 'no spaces' }))).toBe('invalid_provider');
  });

  it('finds the push for each target, and refuses others', () => {
    expect(providerFor('ec2').targets).toContain('ec2');
    expect(providerFor('openstack-kvm').targets).toContain('openstack-kvm');
    expect(providerFor('docker').targets).toContain('docker');
    expect(providerFor('libvirt').targets).toContain('libvirt');
    expect(code(() => providerFor('vsphere'))).toBe('not_supported');
  });
});

describe('credential scrubbing', () => {
  it('removes secrets in every encoding they can travel in, and keeps nothing of the original error', () => {
    const secrets = new Secrets().add('p@ss/w"rd<1>', 'AKIAEXAMPLE', 'ab');
    const text = `raw p@ss/w"rd<1> url p%40ss%2Fw%22rd%3C1%3E json p@ss/w\\"rd<1> xml p@ss/w&quot;rd&lt;1&gt; b64 ${Buffer.from('p@ss/w"rd<1>').toString('base64')} key AKIAEXAMPLE short ab`;
    const scrubbed = secrets.scrub(text);
    expect(scrubbed).not.toMatch(/p@ss|p%40ss|AKIAEXAMPLE|rd&lt;/);
    expect(scrubbed).toContain('short ab');
    const sdkError = Object.assign(new Error('signature for AKIAEXAMPLE failed'), { $response: { headers: { authorization: 'AKIAEXAMPLE' } } });
    const safe = secrets.error(sdkError);
    expect(safe).toBeInstanceOf(ProviderError);
    expect(safe.code).toBe('provider_error');
    expect(safe.message).toBe(`Error: signature for ${SCRUBBED} failed`);
    expect(Object.keys(safe)).not.toContain('$response');
    expect(safe.cause).toBeUndefined();
    const typed = secrets.error(new ProviderError('auth_failed', 'key AKIAEXAMPLE refused', { key: 'AKIAEXAMPLE' }));
    expect([typed.code, typed.message, typed.details]).toEqual(['auth_failed', `key ${SCRUBBED} refused`, { key: SCRUBBED }]);
  });
});

describe('retries', () => {
  const policy = { attempts: 4, requestTimeoutMs: 50, backoffBaseMs: 1, backoffMaxMs: 4, deadline: Date.now() + 60_000 };
  const retryAll = (): Verdict => ({ retry: true, kind: 'throttled', reason: 'slow down' });

  it('backs off with full jitter under a cap', () => {
    for (let n = 1; n < 20; n++) {
      const delay = backoff({ backoffBaseMs: 100, backoffMaxMs: 1000 }, n);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(Math.min(1000, 100 * 2 ** (n - 1)));
    }
  });

  it('gives up throttled after its attempts, and stops an attempt at its timeout', async () => {
    let calls = 0;
    const throttled = await retrying('x', policy, undefined, async () => {
      calls++;
      throw new Error('Throttling');
    }, retryAll).catch((e: unknown) => e);
    expect([(throttled as ProviderError).code, calls]).toEqual(['throttled', 4]);

    const timeouts: boolean[] = [];
    const hung = await retrying('y', { ...policy, attempts: 2 }, undefined, ({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))), (_e, info) => {
      timeouts.push(info.timedOut);
      return { retry: true, kind: 'unreachable', reason: 'no answer' };
    }).catch((e: unknown) => e);
    expect((hung as ProviderError).code).toBe('provider_unreachable');
    expect(timeouts).toEqual([true, true]);
  });

  it('ends timeout at the overall deadline and cancelled when the signal aborts', async () => {
    const late = await retrying('z', { ...policy, deadline: Date.now() - 1 }, undefined, async () => 1, retryAll).catch((e: unknown) => e);
    expect((late as ProviderError).code).toBe('timeout');
    const abort = new AbortController();
    const cancelled = retrying('w', { ...policy, backoffBaseMs: 10_000, backoffMaxMs: 10_000 }, abort.signal, async () => {
      setTimeout(() => abort.abort(), 5);
      throw new Error('500');
    }, () => ({ retry: true, kind: 'server', reason: '500' }));
    expect(((await cancelled.catch((e: unknown) => e)) as ProviderError).code).toBe('cancelled');
  });
});

describe('EC2 pieces', () => {
  it('maps the sparse map to 512 KiB blocks', () => {
    const BS = 512 * 1024;
    expect(blocksTouched([{ offset: 0, length: 1 }, { offset: BS - 1, length: 2 }, { offset: 5 * BS, length: 2 * BS }, { offset: 7 * BS + 10, length: 1 }], BS)).toEqual([0, 1, 5, 6, 7]);
    expect(blocksTouched([], BS)).toEqual([]);
  });

  it('computes the LINEAR checksum over the digests in block order', () => {
    const d = (s: string) => createHash('sha256').update(s).digest();
    const expected = createHash('sha256').update(Buffer.concat([d('a'), d('b'), d('c')])).digest('base64');
    expect(linearChecksum(new Map([[9, d('c')], [1, d('a')], [4, d('b')]]))).toBe(expected);
    expect(linearChecksum(new Map())).toBeNull();
  });

  it('knows what AWS errors mean', () => {
    const err = (name: string, status?: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
    const t = { timedOut: false };
    expect(classifyAwsFailure(err('AuthFailure', 401), t)).toMatchObject({ retry: false, error: { code: 'auth_failed' } });
    expect(classifyAwsFailure(err('SyntaxError', 403), t)).toMatchObject({ retry: false, error: { code: 'auth_failed' } });
    expect(classifyAwsFailure(err('RequestLimitExceeded', 503), t)).toMatchObject({ retry: true, kind: 'throttled' });
    expect(classifyAwsFailure(err('ThrottlingException', 429), t)).toMatchObject({ retry: true, kind: 'throttled' });
    expect(classifyAwsFailure(err('InternalServerException', 500), t)).toMatchObject({ retry: true, kind: 'server' });
    expect(classifyAwsFailure(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), t)).toMatchObject({ retry: true, kind: 'unreachable' });
    expect(classifyAwsFailure(err('AbortError'), { timedOut: true })).toMatchObject({ retry: true, kind: 'unreachable' });
    expect(classifyAwsFailure(err('ValidationException', 400), t)).toMatchObject({ retry: false, error: { code: 'provider_error' } });
  });

  it('names AMIs within EC2\'s rules and picks a boot mode', () => {
    expect(amiName('Debian 12 (bookworm)!', 'id')).toBe('Debian 12 (bookworm)_ id');
    expect(amiName('x'.repeat(300), 'id').length).toBeLessThanOrEqual(128);
    expect(amiBootMode(undefined, 'x86_64')).toBe('legacy-bios');
    expect(amiBootMode(undefined, 'arm64')).toBe('uefi');
    expect(amiBootMode('uefi-preferred', 'x86_64')).toBe('uefi-preferred');
    expect(code(() => amiBootMode('bogus', 'x86_64'))).toBe('not_supported');
  });
});
