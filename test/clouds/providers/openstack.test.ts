// The OpenStack push against real Keystone v3 and Glance v2 services from Debian's packages.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { makeQcow2 } from './disk-fixture.js';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ProviderError } from '../../../src/clouds/providers/errors.js';
import { openstackProvider } from '../../../src/clouds/providers/openstack/index.js';
import type { PushContext, PushResult } from '../../../src/clouds/providers/types.js';
import { WorkerPool } from '../../../src/pool/index.js';
import { describeWithTools, tool } from '../../tools.js';
import { freePort } from '../../../bench/providers/services.js';
import { startFaultProxy } from '../../../bench/providers/fault-proxy.js';
import { startGlance, startOpenstack, type OpenstackServices } from './openstack-services.js';
import { makePushContext, rejection, type RecordingContext } from './push-context.js';

const MiB = 1024 * 1024;

describeWithTools(
  [tool('keystone-manage', ['--version']), tool('keystone-wsgi-public', ['--help']), tool('glance-api', ['--version']), tool('glance-manage', ['--version']), tool('qemu-img')],
  'OpenStack push (Keystone v3 + Glance v2)',
  () => {
    let dir: string;
    let os: OpenstackServices;
    let pool: WorkerPool;
    let qcow2: string;
    let bigQcow2: string;
    const contexts: RecordingContext[] = [];
    const errors: unknown[] = [];
    const results: PushResult[] = [];

    const provider = () => JSON.stringify({ auth_url: `${os.keystone.url}/v3` });
    const credentials = (password = os.user.password) =>
      `<provider_credentials><openstack_credentials><username>${os.user.username}</username><password>${password}</password><tenant>${os.user.project}</tenant></openstack_credentials></provider_credentials>`;
    const context = (overrides: Partial<PushContext> = {}) => {
      const ctx = makePushContext({
        imageId: randomUUID(),
        target: 'openstack-kvm',
        file: qcow2,
        templateName: 'debian-12',
        arch: 'x86_64',
        provider: provider(),
        credentials: credentials(),
        parameters: {},
        pool,
        options: { pollIntervalMs: 100, backoffBaseMs: 10, backoffMaxMs: 100 },
        ...overrides,
      });
      contexts.push(ctx);
      return ctx;
    };
    /** Glance's images, as the admin sees them (all projects). */
    const glanceImages = async () => {
      const answer = await fetch(`${os.glance.url}/v2/images?limit=1000`, { headers: { 'x-auth-token': os.adminToken } });
      return ((await answer.json()) as { images: { id: string; status: string }[] }).images;
    };
    const glanceImage = async (id: string) => {
      const answer = await fetch(`${os.glance.url}/v2/images/${id}`, { headers: { 'x-auth-token': os.adminToken } });
      return answer.status === 404 ? undefined : ((await answer.json()) as Record<string, unknown>);
    };

    beforeAll(async () => {
      dir = await mkdtemp('/var/tmp/h13-openstack-test-');
      os = await startOpenstack(dir);
      pool = new WorkerPool({ maxThreads: 1 });
      qcow2 = await makeQcow2(dir, 'disk', 6 * MiB);
      bigQcow2 = await makeQcow2(dir, 'big', 96 * MiB);
    }, 180_000);

    afterAll(async () => {
      await pool?.destroy();
      await os?.stop();
      if (os) {
        const produced = JSON.stringify({ c: contexts.map((c) => [c.logs, c.progressed, c.recorded]), results, errors: errors.map((e) => [String(e), (e as ProviderError).details, (e as Error).stack]) });
        expect(produced).not.toContain(os.user.password);
        for (const name of (await readdir(dir)).filter((f) => /\.(log|out)$/.test(f))) {
          expect(await readFile(join(dir, name), 'utf8'), name).not.toContain(os.user.password);
        }
      }
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('authenticates with Keystone, uploads to the catalog\'s Glance and waits for active; DELETE removes the image', async () => {
      const ctx = context();
      const result = await openstackProvider.push(ctx);
      results.push(result);
      expect(result.providerAccountIdentifier).toBe(os.projectId);
      expect(result.resources).toEqual([{ kind: 'glance-image', id: result.identifierOnProvider }]);
      const image = await glanceImage(result.identifierOnProvider);
      const data = await readFile(qcow2);
      expect(image).toMatchObject({
        status: 'active',
        disk_format: 'qcow2',
        container_format: 'bare',
        visibility: 'private',
        owner: os.projectId,
        size: data.length,
        checksum: createHash('md5').update(data).digest('hex'),
        os_hash_value: createHash('sha512').update(data).digest('hex'),
        name: `debian-12 ${ctx.imageId}`,
        imagefactory_image_id: ctx.imageId,
      });
      expect(ctx.progressed.at(-1)!.fraction).toBe(1);

      await openstackProvider.delete({ target: 'openstack-kvm', provider: provider(), credentials: credentials(), identifierOnProvider: result.identifierOnProvider });
      expect(await glanceImage(result.identifierOnProvider)).toBeUndefined();
      await openstackProvider.delete({ target: 'openstack-kvm', provider: provider(), credentials: credentials(), identifierOnProvider: result.identifierOnProvider });
    });

    it('a cancel mid-upload leaves no image in Glance', async () => {
      const before = (await glanceImages()).map((i) => i.id);
      const abort = new AbortController();
      const ctx = context({ file: bigQcow2, signal: abort.signal });
      ctx.onProgress = (p) => {
        if ((p.counters?.bytesSent ?? 0) > 8 * MiB) abort.abort();
      };
      const error = await rejection(openstackProvider.push(ctx));
      errors.push(error);
      expect((error as ProviderError).code).toBe('cancelled');
      expect(ctx.recorded).toHaveLength(1);
      expect(ctx.progressed.at(-1)!.counters!.bytesSent).toBeLessThan(96 * MiB);
      expect(await glanceImage(ctx.recorded[0]!.id)).toBeUndefined();
      expect((await glanceImages()).map((i) => i.id)).toEqual(before);
      await openstackProvider.cleanup({ target: 'openstack-kvm', provider: provider(), credentials: credentials(), resources: ctx.recorded });
    });

    it('a wrong password ends auth_failed (Keystone 401) with nothing created', async () => {
      const before = (await glanceImages()).length;
      const wrong = `wrong-${randomBytes(6).toString('hex')}`;
      const ctx = context({ credentials: credentials(wrong) });
      const error = await rejection(openstackProvider.push(ctx));
      errors.push(error);
      expect((error as ProviderError).code).toBe('auth_failed');
      expect(`${(error as Error).message} ${JSON.stringify((error as ProviderError).details)}`).not.toContain(wrong);
      expect(ctx.recorded).toEqual([]);
      expect((await glanceImages()).length).toBe(before);
    });

    it('completes through a 500, a dropped upload and a slow answer on the way to Glance', async () => {
      const proxy = await startFaultProxy(os.glance.url, { slowMs: 1500 });
      const seen = new Set<string>();
      proxy.plan = ({ method, path }) => {
        const key = `${method} ${path.replace(/[0-9a-f-]{36}/, 'ID')}`;
        const first = !seen.has(key);
        seen.add(key);
        if (!first) return undefined;
        if (key === 'POST /v2/images') return 'server-error';
        if (key === 'PUT /v2/images/ID/file') return 'drop';
        if (key === 'GET /v2/images/ID') return 'slow';
        return undefined;
      };
      try {
        const before = (await glanceImages()).length;
        const ctx = context({ provider: JSON.stringify({ auth_url: `${os.keystone.url}/v3`, glance_url: proxy.url }), options: { requestTimeoutMs: 1000, pollIntervalMs: 100, backoffBaseMs: 10, backoffMaxMs: 50 } });
        const result = await openstackProvider.push(ctx);
        results.push(result);
        expect(proxy.counts).toMatchObject({ 'server-error': 1, drop: 1, slow: 1 });
        // The refused create made no image (the proxy answered in Glance's place): one more image, active.
        expect((await glanceImages()).length).toBe(before + 1);
        expect((await glanceImage(result.identifierOnProvider))?.status).toBe('active');
        await openstackProvider.delete({ target: 'openstack-kvm', provider: provider(), credentials: credentials(), identifierOnProvider: result.identifierOnProvider });
        expect((await glanceImages()).length).toBe(before);
      } finally {
        await proxy.stop();
      }
    });

    it('pushes to a Glance without authentication (noauth flavour) given its glance_url', async () => {
      const noauth = await startGlance(dir, 'glance-noauth', await freePort());
      try {
        const doc = JSON.stringify({ glance_url: noauth.url });
        const ctx = context({ provider: doc, credentials: '' });
        const result = await openstackProvider.push(ctx);
        results.push(result);
        expect(result.providerAccountIdentifier).toBeUndefined();
        const image = (await (await fetch(`${noauth.url}/v2/images/${result.identifierOnProvider}`)).json()) as Record<string, unknown>;
        expect(image).toMatchObject({ status: 'active', disk_format: 'qcow2', visibility: 'private' });
        await openstackProvider.delete({ target: 'openstack-kvm', provider: doc, credentials: '', identifierOnProvider: result.identifierOnProvider });
        expect((await fetch(`${noauth.url}/v2/images/${result.identifierOnProvider}`)).status).toBe(404);
      } finally {
        await noauth.stop();
      }
    });

    it('says which field is missing without echoing the credentials', async () => {
      const error = await rejection(openstackProvider.push(context({ credentials: JSON.stringify({ username: 'factory', password: 'secret-xyz' }) })));
      errors.push(error);
      expect((error as ProviderError).code).toBe('invalid_credentials');
      expect((error as Error).message).not.toContain('secret-xyz');
    });
  },
);
