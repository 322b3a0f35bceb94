import http from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STREAM_LIMITS } from '../../src/api/streams.js';
import { getJson, postForm, postJson, start, tick, TEMPLATE, type Harness } from './helpers.js';

/** Requests made to hurt: callback URLs that cannot be delivered to, and more open streams than a server can hold. */

let h: Harness;
beforeEach(async () => {
  h = await start({ heartbeatMs: 60_000 });
});
afterEach(async () => {
  for (const r of opened) r.destroy();
  opened = [];
  await h.stop();
});

describe('callback URLs are checked at submission', () => {
  const submit = (callbacks: unknown) => postJson(`${h.base}/base_images`, { base_image: { template: TEMPLATE, parameters: { callbacks } } });

  it.each([
    [['http://'], 'is not a URL'],
    ['http://', 'is not a URL'],
    [['ftp://example.org/x'], 'must be an http or https URL, not ftp'],
    [['javascript:alert(1)'], 'must be an http or https URL, not javascript'],
    [['file:///etc/passwd'], 'must be an http or https URL, not file'],
    [['https://ok.example.org/a', 42], 'callback 2 must be a URL string, not number'],
    [['http://a.example.org/x y'], 'contains white space'],
    [Array.from({ length: 17 }, (_, i) => `http://h${i}.example.org/`), 'at most 16 are allowed'],
  ])('refuses %j with 400 invalid_callback, before the engine sees it', async (callbacks, why) => {
    const r = await submit(callbacks);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid_callback');
    expect(r.body.error.message).toContain(why);
    expect(h.engine.calls.filter((c) => c.method === 'submitBaseImage')).toEqual([]);
  });

  it('never repeats a callback password in the refusal or the log', async () => {
    const r = await submit(['gopher://admin:hunter2@example.org/x']);
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).not.toContain('hunter2');
    expect(r.body.error.message).toContain('gopher://admin:********@example.org/x');
    expect(h.logs.join('\n')).not.toContain('hunter2');
  });

  it('checks form-encoded parameters the same way', async () => {
    const r = await postForm(`${h.base}/base_images`, { template: TEMPLATE, parameters: JSON.stringify({ callbacks: ['http://'] }) });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid_callback');
  });

  it('accepts http and https callbacks with a host', async () => {
    const r = await submit(['https://bob:pw@hooks.example.org/build', 'http://10.0.0.5:8080/cb']);
    expect(r.status).toBe(202);
  });
});

let opened: http.ClientRequest[] = [];

/** Opens an event stream from `localAddress`; resolves with the answer's status (and code when refused). */
function openStream(path: string, localAddress = '127.0.0.1'): Promise<{ status: number; code?: string; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${h.base}${path}`, { localAddress, headers: { accept: '*/*' }, agent: false }, (res) => {
      if (res.statusCode === 200) return resolve({ status: 200 });
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, code: JSON.parse(body).error.code, retryAfter: res.headers['retry-after'] as string }));
    });
    req.on('error', reject);
    opened.push(req);
  });
}

describe('long-lived streams are bounded', () => {
  it(`gives one client at most ${STREAM_LIMITS.perClient} streams (events and followed logs together), then 503 too_many_streams`, async () => {
    const image = h.engine.addImage('BaseImage', { status: 'BUILDING' });
    for (let i = 0; i < STREAM_LIMITS.perClient - 1; i++) expect((await openStream('/events')).status).toBe(200);
    expect((await openStream(`/base_images/${image.id}/log?follow=1`)).status).toBe(200);
    expect(await openStream('/events')).toEqual({ status: 503, code: 'too_many_streams', retryAfter: '10' });
    expect(await openStream(`/base_images/${image.id}/log?follow=1`)).toMatchObject({ status: 503, code: 'too_many_streams' });
    // Another client is still served; and a closed stream frees its slot.
    expect((await openStream('/events', '127.0.0.2')).status).toBe(200);
    opened[0]!.destroy();
    const deadline = Date.now() + 2000;
    let again = await openStream('/events');
    while (again.status !== 200 && Date.now() < deadline) {
      await tick(20);
      again = await openStream('/events');
    }
    expect(again.status).toBe(200);
    // Plain requests are never counted.
    expect((await getJson(`${h.base}/base_images`)).status).toBe(200);
  });

  it(`holds at most ${STREAM_LIMITS.total} streams in all`, async () => {
    const clients = Math.ceil(STREAM_LIMITS.total / STREAM_LIMITS.perClient);
    const all: Promise<{ status: number }>[] = [];
    for (let c = 0; c < clients; c++) for (let i = 0; i < STREAM_LIMITS.perClient; i++) all.push(openStream('/events', `127.0.1.${c + 1}`));
    const statuses = (await Promise.all(all)).map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(STREAM_LIMITS.total);
    expect(await openStream('/events', '127.0.2.1')).toMatchObject({ status: 503, code: 'too_many_streams' });
    expect(h.engine.listenerCount()).toBe(STREAM_LIMITS.total);
  });
});
