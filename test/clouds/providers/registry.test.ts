// The registry push against Debian's docker-registry (htpasswd auth), read back with skopeo.
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ProviderError } from '../../../src/clouds/providers/errors.js';
import { registryProvider } from '../../../src/clouds/providers/registry/index.js';
import type { PushContext, PushResult } from '../../../src/clouds/providers/types.js';
import { WorkerPool } from '../../../src/pool/index.js';
import { describeWithTools, tool } from '../../tools.js';
import { makeOciArchive, type OciFixture } from './oci-fixture.js';
import { makePushContext, rejection, type RecordingContext } from './push-context.js';
import { startRegistry } from './registry-service.js';
import { startTokenServer } from './registry-token-server.js';
import type { Service } from '../../../bench/providers/services.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

describeWithTools([tool('docker-registry', ['--version']), tool('skopeo'), file('/usr/bin/python3'), tool('tar'), tool('openssl', ['version'])], 'registry push (OCI distribution) against docker-registry', () => {
  const username = 'factory';
  const password = `pw-${randomBytes(9).toString('hex')}`;
  let dir: string;
  let registry: Service;
  let fixture: OciFixture;
  let pool: WorkerPool;
  const contexts: RecordingContext[] = [];
  const errors: unknown[] = [];
  const results: PushResult[] = [];

  const provider = () => JSON.stringify({ registry: registry.url });
  const credentials = (pw = password) => `<provider_credentials><docker_credentials><username>${username}</username><password>${pw}</password></docker_credentials></provider_credentials>`;
  const context = (overrides: Partial<PushContext> = {}) => {
    const ctx = makePushContext({
      imageId: randomUUID(),
      target: 'docker',
      file: fixture.archive,
      templateName: 'Debian 12',
      arch: 'x86_64',
      provider: provider(),
      credentials: credentials(),
      parameters: { repository: 'factory/debian', tag: `t-${randomBytes(3).toString('hex')}` },
      pool,
      options: { backoffBaseMs: 10, backoffMaxMs: 100 },
      ...overrides,
    });
    contexts.push(ctx);
    return ctx;
  };
  const host = () => registry.url.replace(/^http:\/\//, '');
  const skopeoInspect = async (reference: string) => {
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', `${username}:${password}`, `docker://${reference}`]);
    return JSON.parse(stdout) as { layers: { digest: string }[]; config: { digest: string } };
  };
  /** HTTP status of a registry path, authenticated. */
  const status = async (path: string, accept = 'application/vnd.oci.image.manifest.v1+json') =>
    (await fetch(`${registry.url}/v2/${path}`, { method: 'HEAD', headers: { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`, accept } })).status;

  beforeAll(async () => {
    dir = await mkdtemp('/var/tmp/h13-registry-test-');
    registry = await startRegistry(dir, username, password);
    fixture = await makeOciArchive(dir, 48 * MiB);
    pool = new WorkerPool({ maxThreads: 1 });
  });

  afterAll(async () => {
    await pool?.destroy();
    await registry?.stop();
    if (registry) {
      const produced = JSON.stringify({ c: contexts.map((c) => [c.logs, c.progressed, c.recorded]), results, errors: errors.map((e) => [String(e), (e as ProviderError).details, (e as Error).stack]) });
      expect(produced).not.toContain(password);
      expect(produced).not.toContain(Buffer.from(`${username}:${password}`).toString('base64'));
      expect(await readFile(registry.logFile, 'utf8')).not.toContain(password);
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('pushes the OCI archive so that skopeo inspects the reference, and DELETE removes the manifest', async () => {
    const ctx = context();
    const result = await registryProvider.push(ctx);
    results.push(result);
    expect(result.identifierOnProvider).toBe(`${host()}/factory/debian@${fixture.manifestDigest}`);
    const byTag = await skopeoInspect(`${host()}/factory/debian:${String(ctx.parameters.tag)}`);
    expect(byTag.layers.map((l) => l.digest)).toEqual([fixture.layerDigest]);
    expect(byTag.config.digest).toBe(fixture.configDigest);
    const byDigest = await skopeoInspect(result.identifierOnProvider);
    expect(byDigest.layers.map((l) => l.digest)).toEqual([fixture.layerDigest]);
    expect(ctx.progressed.at(-1)!.fraction).toBe(1);

    // A second push of the same image to another tag sends no blob again.
    const again = context({ parameters: { repository: 'factory/debian', tag: 'second' } });
    const second = await registryProvider.push(again);
    expect(second.resources.filter((r) => r.kind === 'registry-blob')).toEqual([]);
    expect(again.logs.filter((l) => /already in/.test(l))).toHaveLength(2);

    await registryProvider.delete({ target: 'docker', provider: provider(), credentials: credentials(), identifierOnProvider: result.identifierOnProvider });
    expect(await status(`factory/debian/manifests/${fixture.manifestDigest}`)).toBe(404);
    expect(await status(`factory/debian/manifests/${String(ctx.parameters.tag)}`)).toBe(404);
    // Deleting again is fine.
    await registryProvider.delete({ target: 'docker', provider: provider(), credentials: credentials(), identifierOnProvider: result.identifierOnProvider });
  });

  it('a cancel mid-upload leaves no manifest, tag or uploaded blob in the registry', async () => {
    const abort = new AbortController();
    const ctx = context({ parameters: { repository: 'factory/cancelled', tag: 'never' }, signal: abort.signal });
    ctx.onProgress = (p) => {
      if ((p.counters?.bytesSent ?? 0) > 8 * MiB) abort.abort();
    };
    const error = await rejection(registryProvider.push(ctx));
    errors.push(error);
    expect((error as ProviderError).code).toBe('cancelled');
    expect(ctx.progressed.at(-1)!.counters!.bytesSent).toBeLessThan(fixture.layerSize);
    expect(await status('factory/cancelled/manifests/never')).toBe(404);
    for (const digest of [fixture.layerDigest, fixture.configDigest]) expect(await status(`factory/cancelled/blobs/${digest}`)).toBe(404);
    await registryProvider.cleanup({ target: 'docker', provider: provider(), credentials: credentials(), resources: ctx.recorded });
  });

  it('a wrong password ends auth_failed, with nothing pushed and no password in the error', async () => {
    const ctx = context({ parameters: { repository: 'factory/refused', tag: 'x' }, credentials: credentials(`not-${password}`) });
    const error = await rejection(registryProvider.push(ctx));
    errors.push(error);
    expect((error as ProviderError).code).toBe('auth_failed');
    expect(`${(error as Error).message} ${JSON.stringify((error as ProviderError).details)}`).not.toContain(password);
    expect(ctx.recorded).toEqual([]);
    expect(await status('factory/refused/manifests/x')).toBe(404);
  });

  it('pushes an OCI archive compressed as a whole (gzip, xz) and leaves no temporary file', async () => {
    const tmpBefore = (await readdir(tmpdir())).filter((f) => f.startsWith('imagefactory-oci-'));
    const smallDir = join(dir, 'small');
    await mkdir(smallDir);
    const small = await makeOciArchive(smallDir, 256 * 1024);
    for (const [tool, ext] of [['gzip', 'gz'], ['xz', 'xz']] as const) {
      const compressed = `${small.archive}.${ext}`;
      await run('sh', ['-c', `${tool} -1 -c "$1" > "$2"`, 'sh', small.archive, compressed]);
      const ctx = context({ file: compressed, parameters: { repository: `factory/${ext}`, tag: 'c' } });
      const result = await registryProvider.push(ctx);
      results.push(result);
      expect(result.identifierOnProvider).toBe(`${host()}/factory/${ext}@${small.manifestDigest}`);
      expect((await skopeoInspect(`${host()}/factory/${ext}:c`)).layers.map((l) => l.digest)).toEqual([small.layerDigest]);
      await rm(compressed);
    }
    expect((await readdir(tmpdir())).filter((f) => f.startsWith('imagefactory-oci-'))).toEqual(tmpBefore);
  });

  it('answers a Bearer challenge with a token from the registry\'s token server', async () => {
    const tokenServer = await startTokenServer(dir, username, password);
    const tokenRegistry = await startRegistry(dir, username, password, tokenServer);
    try {
      const doc = JSON.stringify({ registry: tokenRegistry.url });
      const ctx = context({ provider: doc, parameters: { repository: 'factory/bearer', tag: 'b' } });
      const result = await registryProvider.push(ctx);
      results.push(result);
      expect(tokenServer.tokens.length).toBeGreaterThan(0);
      const reference = `${tokenRegistry.url.replace(/^http:\/\//, '')}/factory/bearer:b`;
      expect((await skopeoInspect(reference)).layers.map((l) => l.digest)).toEqual([fixture.layerDigest]);
      await registryProvider.delete({ target: 'docker', provider: doc, credentials: credentials(), identifierOnProvider: result.identifierOnProvider });
      await expect(skopeoInspect(reference)).rejects.toThrow(/manifest unknown|not found/i);

      const refused = context({ provider: doc, credentials: credentials(`not-${password}`), parameters: { repository: 'factory/bearer', tag: 'refused' } });
      const error = await rejection(registryProvider.push(refused));
      errors.push(error);
      expect((error as ProviderError).code).toBe('auth_failed');

      const produced = JSON.stringify([ctx.logs, ctx.progressed, refused.logs, result, String(error), (error as ProviderError).details]);
      for (const token of tokenServer.tokens) expect(produced).not.toContain(token.split('.')[2]);
    } finally {
      await tokenRegistry.stop();
      await tokenServer.stop();
    }
  });

  it('refuses an input that is not an OCI archive with input_invalid', async () => {
    const ctx = context({ file: join(dir, 'layer.tar') });
    const error = await rejection(registryProvider.push(ctx));
    errors.push(error);
    expect((error as ProviderError).code).toBe('input_invalid');
  });
});

function file(path: string) {
  return { name: path, file: path };
}
