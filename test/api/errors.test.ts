import http from 'node:http';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/errors.js';
import { TEMPLATE, getJson, postJson, start, type Harness } from './helpers.js';

let h: Harness;
beforeEach(async () => {
  h = await start({ maxBodyBytes: 4096 });
});
afterEach(async () => {
  await h.stop();
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('unknown paths and methods', () => {
  it.each(['/nope', '/imagefactory/nope', '/imagefactory/base_images/x/y/z/w', '/imagefactory/plugins/a/b'])('%s is 404 not_found as JSON', async (path) => {
    const r = await getJson(`${h.origin}${path}`);
    expect(r.status).toBe(404);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.body.error.code).toBe('not_found');
    expect(typeof r.body.error.message).toBe('string');
  });

  it('a known path with another method is 405 method_not_allowed with Allow', async () => {
    const r = await getJson(`${h.base}/base_images`, { method: 'PUT' });
    expect(r.status).toBe(405);
    expect(r.body.error.code).toBe('method_not_allowed');
    expect(r.headers.get('allow')).toBe('GET, POST, HEAD');
  });
});

describe('content negotiation (406 not_acceptable)', () => {
  it.each(['text/xml', 'application/xml, text/html', 'text/*', 'application/json;q=0', 'application/json;q=0, */*', 'application/octet-stream'])(
    'Accept: %s is refused on a JSON route',
    async (accept) => {
      const r = await getJson(`${h.base}/base_images`, { headers: { accept: accept } });
      expect(r.status).toBe(406);
      expect(r.body.error.code).toBe('not_acceptable');
    },
  );

  it.each(['application/json', '*/*', 'application/*', 'text/xml, */*;q=0.1', 'text/html;q=0.9, application/json;q=0.5', 'APPLICATION/JSON; charset=utf-8', 'application/*;q=0.2, application/xml'])(
    'Accept: %s is served JSON',
    async (accept) => {
      const r = await getJson(`${h.base}/base_images`, { headers: { accept } });
      expect(r.status).toBe(200);
    },
  );

  it('a POST is refused before anything is built', async () => {
    const r = await postJson(`${h.base}/base_images`, { base_image: { template: TEMPLATE } }, { headers: { accept: 'text/xml', 'content-type': 'application/json' } });
    expect(r.status).toBe(406);
    expect(h.engine.calls.some((c) => c.method === 'submitBaseImage')).toBe(false);
  });
});

describe('bodies', () => {
  it('malformed JSON is 400 bad_json', async () => {
    const r = await getJson(`${h.base}/base_images`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"base_image": {' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad_json');
  });

  it('invalid UTF-8 in a JSON body is 400 bad_json', async () => {
    const r = await getJson(`${h.base}/base_images`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad_json');
  });

  it.each(['application/xml', 'text/plain', 'multipart/form-data; boundary=x'])('a %s body is 415 unsupported_media_type', async (type) => {
    const r = await getJson(`${h.base}/base_images`, { method: 'POST', headers: { 'content-type': type }, body: '<base_image/>' });
    expect(r.status).toBe(415);
    expect(r.body.error.code).toBe('unsupported_media_type');
  });

  it('a body declared larger than the limit is 413 body_too_large before it is read', async () => {
    // The server must answer although the client never sends the body it declared.
    const answer = await new Promise<string>((resolve, reject) => {
      const port = new URL(h.origin).port;
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.write(`POST /imagefactory/base_images HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{"base_image":`);
      });
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (c: string) => (text += c));
      socket.on('end', () => resolve(text));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer.toLowerCase()).toContain('connection: close');
    expect(answer).toContain('"code":"body_too_large"');
  });

  it('a chunked body that streams past the limit and stalls is 413 body_too_large within a second, without waiting for the rest', async () => {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${h.base}/base_images`, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.write('{"base_image":{"template":"');
      req.write('x'.repeat(5000));
      // The request is never ended: the answer must come from the limit alone.
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body).error.code).toBe('body_too_large');
    expect(h.engine.calls.some((c) => c.method === 'submitBaseImage')).toBe(false);
  });

  it('a body within the limit is accepted', async () => {
    const r = await postJson(`${h.base}/base_images`, { base_image: { template: TEMPLATE } });
    expect(r.status).toBe(202);
  });
});

describe('engine errors map to their status', () => {
  it.each([
    ['conflict', 409],
    ['queue_full', 503],
    ['shutting_down', 503],
    ['bad_request', 400],
    ['bad_parameter', 400],
    ['image_not_found', 404],
    ['not_supported', 501],
    ['target_content_invalid', 500],
  ] as const)('%s → %i', async (code, status) => {
    h.engine.failOn('listImages', () => new EngineError(code, `engine says ${code}`, { why: code }));
    const r = await getJson(`${h.base}/base_images`);
    expect(r.status).toBe(status);
    expect(r.body).toEqual({ error: { code, message: `engine says ${code}`, details: { why: code } } });
  });
});

describe('genuine faults', () => {
  it('a throwing engine method is 500 internal with a correlation id in the body and the log, no stack; the server keeps serving', async () => {
    h.engine.failOn('listImages');
    const r = await getJson(`${h.base}/base_images`);
    expect(r.status).toBe(500);
    expect(r.body.error.code).toBe('internal');
    const id = r.body.error.details.correlation_id;
    expect(id).toMatch(UUID);
    expect(r.headers.get('x-correlation-id')).toBe(id);
    expect(r.body.error.message).toContain(id);
    expect(JSON.stringify(r.body)).not.toMatch(/boom|fake-engine|at /);
    const line = h.logs.find((l) => l.includes(id));
    expect(line).toContain('boom: the fake engine failed');
    expect(line).toContain('GET /imagefactory/base_images');

    h.engine.heal('listImages');
    expect((await getJson(`${h.base}/base_images`)).status).toBe(200);
  });

  it('each fault gets its own correlation id', async () => {
    h.engine.failOn('plugins');
    const a = await getJson(`${h.base}/plugins`);
    const b = await getJson(`${h.base}/plugins`);
    expect(a.body.error.details.correlation_id).not.toBe(b.body.error.details.correlation_id);
  });

  it('a fault after an await (in a POST) is also a 500 and the server keeps serving', async () => {
    h.engine.failOn('submitBaseImage', () => new TypeError('cannot read properties of undefined'));
    const r = await postJson(`${h.base}/base_images`, { base_image: { template: TEMPLATE } });
    expect(r.status).toBe(500);
    expect(r.body.error.code).toBe('internal');
    const again = await getJson(h.base);
    expect(again.status).toBe(200);
  });

  it.each([['a string'], [undefined], [null], [0], [{ not: 'an error' }]])('a thrown non-Error value (%j) is a 500 too', async (value) => {
    h.engine.failOn('getImage', () => value);
    const r = await getJson(`${h.base}/base_images/x`);
    expect(r.status).toBe(500);
    expect(r.body.error.code).toBe('internal');
  });
});

describe('access log', () => {
  it('logs method, path and status, never the query string', async () => {
    await fetch(`${h.base}/base_images?credentials=TOPSECRET`);
    await new Promise((r) => setTimeout(r, 20));
    expect(h.logs.some((l) => l.startsWith('GET /imagefactory/base_images 200'))).toBe(true);
    expect(h.logs.join('\n')).not.toContain('TOPSECRET');
  });
});
