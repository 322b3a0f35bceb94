/**
 * The front door of the REST API on a real server (over the fake engine):
 * cross-site refusal, OAuth on every route but the open ones, request ids,
 * the inspector's loopback rule, and GET /metrics.
 */
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { hostHas, itWithTools } from '../tools.js';
import { OAuthVerifier } from '../../src/api/auth/oauth.js';
import { signRequest } from '../../src/api/auth/sign.js';
import { BuildMetrics } from '../../src/api/metrics.js';
import { createApiServer } from '../../src/api/server.js';
import { independentHeader, request } from '../daemon/live.js';
import { FakeEngine } from './fake-engine.js';
import { start, TEMPLATE, type Harness } from './helpers.js';

const CLIENTS = { alice: 'alice-secret-123', bob: 'bob-secret-456' };
const alice = { key: 'alice', secret: CLIENTS.alice };

const harnesses: Harness[] = [];
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (harnesses.length) await harnesses.pop()!.stop();
  while (cleanups.length) await cleanups.pop()!();
});

async function server(opts: Parameters<typeof start>[0] = {}) {
  const h = await start(opts);
  harnesses.push(h);
  return h;
}

const body = JSON.stringify({ base_image: { template: TEMPLATE } });
const json = { 'content-type': 'application/json' };

describe('cross-site requests (CSRF), without OAuth', () => {
  it('refuses a state-changing request that a browser marks as from another site, with 403 cross_site_refused', async () => {
    const h = await server();
    const image = h.engine.addImage('BaseImage', { status: 'BUILDING', phase: 'installing' });
    const cases: [string, string, Record<string, string>, string?][] = [
      ['POST', `${h.base}/base_images`, { ...json, origin: 'https://evil.example' }, body],
      ['POST', `${h.base}/base_images`, { ...json, origin: 'null' }, body],
      ['POST', `${h.base}/base_images/${image.id}/cancel`, { origin: 'http://localhost:1' }],
      ['DELETE', `${h.base}/base_images/${image.id}`, { 'sec-fetch-site': 'cross-site' }],
      ['POST', `${h.base}/base_images`, { ...json, 'sec-fetch-site': 'same-site' }, body],
      // A form post from any page, even one that claims to be ours: the API takes JSON from browsers.
      ['POST', `${h.base}/base_images`, { 'content-type': 'application/x-www-form-urlencoded', origin: h.origin }, `template=${encodeURIComponent(TEMPLATE)}`],
      ['POST', `${h.base}/base_images`, { 'content-type': 'text/plain', 'sec-fetch-site': 'same-origin' }, body],
    ];
    for (const [method, url, headers, payload] of cases) {
      const r = await request(url, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
      expect([r.status, r.json().error.code], `${method} ${url} ${JSON.stringify(headers)}`).toEqual([403, 'cross_site_refused']);
    }
    // Nothing reached the engine.
    expect(h.engine.calls.filter((c) => c.method !== 'getImage' && c.method !== 'listImages')).toEqual([]);
    expect(h.engine.images.size).toBe(1);
  });

  it('accepts the same requests from the daemon’s own origin and from clients that are not browsers (curl’s form posts included)', async () => {
    const h = await server();
    const own = await request(`${h.base}/base_images`, { method: 'POST', headers: { ...json, origin: h.origin, 'sec-fetch-site': 'same-origin' }, body });
    expect(own.status).toBe(202);
    const curl = await request(`${h.base}/base_images`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `template=${encodeURIComponent(TEMPLATE)}` });
    expect(curl.status).toBe(202);
    // Reading is not changing: a cross-site GET is answered (OAuth is what protects data).
    expect((await request(`${h.base}/base_images`, { headers: { origin: 'https://evil.example' } })).status).toBe(200);
  });
});

describe('OAuth on every route but GET /imagefactory', () => {
  const oauth = () => new OAuthVerifier({ clients: CLIENTS });

  it('answers the open routes unsigned and 401 with WWW-Authenticate: OAuth to everything else, before routing', async () => {
    const h = await server({ oauth: oauth() });
    const image = h.engine.addImage('BaseImage');
    expect((await request(h.base)).status).toBe(200);
    expect((await request(`${h.origin}/inspector`)).status).toBe(200);
    for (const [method, path] of [
      ['GET', '/imagefactory/base_images'],
      ['GET', `/imagefactory/base_images/${image.id}`],
      ['GET', '/imagefactory/events'],
      ['GET', '/imagefactory/openapi.json'],
      ['GET', '/metrics'],
      ['POST', '/imagefactory/base_images'],
      ['DELETE', `/imagefactory/base_images/${image.id}`],
      ['GET', '/imagefactory/no/such/route'],
      ['PUT', '/imagefactory'],
    ] as const) {
      const r = await request(`${h.origin}${path}`, { method, ...(method === 'POST' ? { headers: json, body } : {}) });
      expect(r.status, `${method} ${path}`).toBe(401);
      expect(r.headers['www-authenticate'], path).toBe('OAuth realm="imagefactory", oauth_problem="parameter_absent"');
      expect(r.json().error.code).toBe('oauth_parameter_absent');
    }
    expect(h.engine.calls.filter((c) => c.method !== 'getImage')).toEqual([]);
  });

  it('accepts signed requests (independent signer, header or query; our signer, form fields signed) and refuses altered ones', async () => {
    const h = await server({ oauth: oauth() });
    const list = `${h.base}/base_images`;
    const r1 = await request(list, { headers: { authorization: independentHeader(alice, 'GET', list) } });
    expect(r1.status).toBe(200);
    const post = signRequest({ method: 'POST', url: list, consumer: alice, signatureMethod: 'HMAC-SHA256' });
    expect((await request(list, { method: 'POST', headers: { ...json, authorization: post.header }, body })).status).toBe(202);
    // Form fields are part of the signature: the original's curl-style post, signed.
    const form: [string, string][] = [['template', TEMPLATE]];
    const formPost = signRequest({ method: 'POST', url: list, consumer: alice, form });
    const formBody = new URLSearchParams(form).toString();
    expect((await request(list, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: formPost.header }, body: formBody })).status).toBe(202);
    const altered = signRequest({ method: 'POST', url: list, consumer: alice, form });
    const tampered = await request(list, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: altered.header }, body: `${formBody}&parameters=%7B%7D` });
    expect([tampered.status, tampered.json().error.code]).toEqual([401, 'oauth_signature_invalid']);
    // The query form, as the inspector's EventSource uses it.
    const events = new URL(`${h.base}/events`);
    for (const [name, value] of signRequest({ method: 'GET', url: events.href, consumer: alice }).params) events.searchParams.append(name, value);
    const stream = await new Promise<number>((resolve, reject) => {
      import('node:http').then(({ get }) => {
        const req = get(events, { headers: { accept: 'text/event-stream' } }, (res) => {
          resolve(res.statusCode ?? 0);
          req.destroy();
        });
        req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
      }, reject);
    });
    expect(stream).toBe(200);
    // The access log has the consumer and the request id, never the signature or the query.
    expect(h.logs.join('\n')).not.toMatch(/oauth_signature|alice-secret/);
  });

  it('gives every answer an x-request-id', async () => {
    const h = await server({ oauth: oauth() });
    const a = await request(h.base);
    const b = await request(`${h.base}/base_images`);
    expect(a.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(b.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
  });
});

/** A non-loopback address of this host, if it has one. */
function externalAddress(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
}

describe('the inspector page without OAuth', () => {
  const external = externalAddress();
  const NON_LOOPBACK = hostHas('a non-loopback IPv4 address on this host', () => external !== undefined);
  itWithTools([NON_LOOPBACK], 'is served to loopback clients only (403 inspector_loopback_only elsewhere); with OAuth to anyone, signing its requests', async () => {
    for (const withOAuth of [false, true]) {
      const engine = new FakeEngine();
      const api = createApiServer(engine, { log: () => undefined, oauth: withOAuth ? new OAuthVerifier({ clients: CLIENTS }) : null });
      const port = await api.listen(0, '0.0.0.0');
      cleanups.push(async () => {
        await api.close();
        engine.cleanup();
      });
      const local = await request(`http://127.0.0.1:${port}/inspector`);
      const remote = await request(`http://${external}:${port}/inspector`);
      expect(local.status).toBe(200);
      if (withOAuth) expect(remote.status).toBe(200);
      else expect([remote.status, remote.json().error.code]).toEqual([403, 'inspector_loopback_only']);
      expect((await request(`http://${external}:${port}/inspector/auth/signature-base.js`)).status).toBe(withOAuth ? 200 : 403);
    }
  });
});

describe('GET /metrics', () => {
  it('counts builds by kind, final status and error code, times phases, and shows the queue, behind OAuth', async () => {
    const engine = new FakeEngine();
    const metrics = new BuildMetrics(engine, { runningGuests: () => 2 });
    const api = createApiServer(engine, { log: () => undefined, oauth: new OAuthVerifier({ clients: CLIENTS }), metrics });
    const port = await api.listen(0, '127.0.0.1');
    cleanups.push(async () => {
      metrics.close();
      await api.close();
      engine.cleanup();
    });
    const a = engine.submitBaseImage({ template: TEMPLATE });
    const b = engine.submitBaseImage({ template: TEMPLATE });
    engine.submitBaseImage({ template: TEMPLATE });
    engine.transition(a.id, 'installing', { status: 'BUILDING' });
    await new Promise((r) => setTimeout(r, 30));
    engine.transition(a.id, 'complete', { status: 'COMPLETE' });
    engine.transition(b.id, 'installing', { status: 'BUILDING' });
    engine.images.set(b.id, { ...engine.images.get(b.id)!, error: { code: 'install_stalled', message: 'x' } });
    engine.transition(b.id, 'failed', { status: 'FAILED' });

    const url = `http://127.0.0.1:${port}/metrics`;
    expect((await request(url)).status).toBe(401);
    const r = await request(url, { headers: { authorization: independentHeader(alice, 'GET', url) } });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = r.text;
    expect(text).toContain('imagefactory_builds_submitted_total{kind="base"} 3');
    expect(text).toContain('imagefactory_builds_finished_total{kind="base",status="COMPLETE",error_code=""} 1');
    expect(text).toContain('imagefactory_builds_finished_total{kind="base",status="FAILED",error_code="install_stalled"} 1');
    expect(text).toContain('imagefactory_build_queue_length 1');
    expect(text).toContain('imagefactory_running_guests 2');
    expect(text).toMatch(/imagefactory_phase_duration_seconds_count\{kind="base",phase="installing"\} 2/);
    expect(text).toMatch(/imagefactory_phase_duration_seconds_count\{kind="base",phase="queued"\} 2/);
    const installing = Number(/imagefactory_phase_duration_seconds_sum\{kind="base",phase="installing"\} ([\d.e-]+)/.exec(text)![1]);
    expect(installing).toBeGreaterThanOrEqual(0.02);
    expect(text).toContain('# TYPE imagefactory_pushed_bytes_total counter');

    // A provider image's push counts the bytes it sent when it completes, labelled by the kind of provider.
    const target = engine.addImage('TargetImage', { target: 'ec2' });
    const pushed = engine.submitProviderImage({ target: 'ec2', provider: '{"name":"ec2-us-east-1","endpoint":"http://x"}', credentials: 'c', targetImageId: target.id });
    engine.images.set(pushed.id, { ...engine.images.get(pushed.id)!, properties: { push: { bytes_sent: 4194304 } } });
    engine.transition(pushed.id, 'complete', { status: 'COMPLETE' });
    const again = await request(url, { headers: { authorization: independentHeader(alice, 'GET', url) } });
    expect(again.text).toContain('imagefactory_pushed_bytes_total{provider="ec2"} 4194304');
  });
});
