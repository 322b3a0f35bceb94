import { rmSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { getJson, start, type Harness } from './helpers.js';

let h: Harness;
const BODY = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 256));
beforeEach(async () => {
  h = await start();
});
afterEach(async () => {
  await h.stop();
});

function withBody() {
  const base = h.engine.addImage('BaseImage', { status: 'COMPLETE' });
  const target = h.engine.addImage('TargetImage', { baseImageId: base.id, target: 'ec2', status: 'COMPLETE' });
  h.engine.setBody(target.id, BODY);
  return { base, target, url: `${h.base}/target_images/${target.id}/raw_image` };
}

describe('GET …/raw_image', () => {
  it('sends the whole body file as an octet-stream attachment that accepts ranges', async () => {
    const { target, url } = withBody();
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${target.id}.body"`);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('content-length')).toBe('1000');
    expect(Buffer.from(await res.arrayBuffer()).equals(BODY)).toBe(true);
  });

  it('answers under the nested path too', async () => {
    const { base, target } = withBody();
    const res = await fetch(`${h.base}/base_images/${base.id}/target_images/${target.id}/raw_image`);
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(1000);
  });

  it.each([
    ['bytes=0-99', 0, 99],
    ['bytes=900-', 900, 999],
    ['bytes=-10', 990, 999],
    ['bytes=990-5000', 990, 999],
    ['bytes=-5000', 0, 999],
  ])('Range: %s → 206 with bytes %i-%i', async (range, start, end) => {
    const { url } = withBody();
    const res = await fetch(url, { headers: { range } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/1000`);
    expect(res.headers.get('content-length')).toBe(String(end - start + 1));
    expect(Buffer.from(await res.arrayBuffer()).equals(BODY.subarray(start, end + 1))).toBe(true);
  });

  it.each(['bytes=1000-', 'bytes=5000-6000', 'bytes=-0'])('Range: %s → 416 range_not_satisfiable with Content-Range */size', async (range) => {
    const { url } = withBody();
    const r = await getJson(url, { headers: { range } });
    expect(r.status).toBe(416);
    expect(r.headers.get('content-range')).toBe('bytes */1000');
    expect(r.body.error.code).toBe('range_not_satisfiable');
  });

  it.each(['bytes=5-1', 'items=0-1', 'bytes=0-1,5-6', 'garbage'])('an invalid or multi-range header (%s) gets the whole body', async (range) => {
    const { url } = withBody();
    const res = await fetch(url, { headers: { range } });
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(1000);
  });

  it('HEAD gives the headers without the body', async () => {
    const { url } = withBody();
    const res = await fetch(url, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('1000');
    expect(await res.text()).toBe('');
  });

  it('an image without a body yet is 404 no_body', async () => {
    const image = h.engine.addImage('BaseImage', { status: 'BUILDING' });
    const r = await getJson(`${h.base}/base_images/${image.id}/raw_image`);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('no_body');
  });

  it('a body file that has gone is 404 no_body', async () => {
    const image = h.engine.addImage('BaseImage');
    rmSync(h.engine.setBody(image.id, 'x'));
    const r = await getJson(`${h.base}/base_images/${image.id}/raw_image`);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('no_body');
  });

  it('an unknown image is 404 image_not_found', async () => {
    const r = await getJson(`${h.base}/provider_images/nope/raw_image`);
    expect(r.body.error.code).toBe('image_not_found');
  });

  it('accepts Accept: application/octet-stream and refuses Accept: application/json (406)', async () => {
    const { url } = withBody();
    expect((await fetch(url, { headers: { accept: 'application/octet-stream' } })).status).toBe(200);
    const r = await getJson(url, { headers: { accept: 'application/json' } });
    expect(r.status).toBe(406);
    expect(r.body.error.code).toBe('not_acceptable');
  });
});
