import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Stream, getJson, start, tick, type Harness } from './helpers.js';

let h: Harness;
let streams: Stream[] = [];
beforeEach(async () => {
  h = await start({ heartbeatMs: 100 });
});
afterEach(async () => {
  for (const s of streams) s.close();
  streams = [];
  await h.stop();
});

function open(query = '', headers: Record<string, string> = { accept: 'text/event-stream' }): Stream {
  const s = new Stream(`${h.base}/events${query}`, headers);
  streams.push(s);
  return s;
}

const waitSubscribed = async (n: number) => {
  const deadline = Date.now() + 2000;
  while (h.engine.listenerCount() < n && Date.now() < deadline) await tick(5);
  expect(h.engine.listenerCount()).toBe(n);
  // and every client has its headers and the opening comment
  for (const s of streams) await s.until(() => s.comments.length > 0);
};

describe('GET /imagefactory/events', () => {
  it('streams transitions, progress and deletions in order, with counting ids', async () => {
    const s = open();
    await waitSubscribed(1);
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(s.headers['cache-control']).toBe('no-store');

    const image = h.engine.addImage('BaseImage', { template: '<template><os><rootpw>pw</rootpw></os></template>' });
    h.engine.transition(image.id, 'queued', { status: 'NEW', event: 'SUBMIT' });
    h.engine.transition(image.id, 'installing', { status: 'BUILDING', event: 'START' });
    h.engine.progress(image.id, 30);
    h.engine.progress(image.id, 60);
    h.engine.transition(image.id, 'complete', { status: 'COMPLETE', event: 'DONE', percent: 100 });
    h.engine.deleteImage(image.id);
    await s.until(() => s.events.length === 6);

    expect(s.events.map((e) => e.event)).toEqual(['transition', 'transition', 'progress', 'progress', 'transition', 'deleted']);
    expect(s.events.map((e) => e.id)).toEqual(['1', '2', '3', '4', '5', '6']);
    const data = s.events.map((e) => JSON.parse(e.data!));
    expect(data[0]).toEqual({
      image: {
        _type: 'BaseImage',
        id: image.id,
        href: `${h.base}/base_images/${image.id}`,
        status: 'NEW',
        percent_complete: 0,
        phase: 'queued',
        activity: image.activity,
        updated: expect.any(String),
      },
      transition: { from: null, to: 'queued', event: 'SUBMIT', at: expect.any(String) },
    });
    expect(data[1].transition).toMatchObject({ from: 'queued', to: 'installing', event: 'START' });
    expect(data.slice(2, 4).map((d) => [d.image.percent_complete, d.transition])).toEqual([
      [30, undefined],
      [60, undefined],
    ]);
    expect(data[4].image).toMatchObject({ status: 'COMPLETE', percent_complete: 100 });
    expect(data[5].image).toMatchObject({ id: image.id, status: 'DELETED' });
    expect(s.text).not.toContain('<rootpw>pw');
  });

  it('?id= narrows the stream to one image', async () => {
    const a = h.engine.addImage('BaseImage');
    const b = h.engine.addImage('BaseImage');
    const s = open(`?id=${b.id}`);
    const all = open();
    await waitSubscribed(2);
    h.engine.transition(a.id, 'queued');
    h.engine.transition(b.id, 'queued');
    h.engine.progress(a.id, 10);
    h.engine.progress(b.id, 20);
    await s.until(() => s.events.length === 2);
    await all.until(() => all.events.length === 4);
    await tick(50);
    expect(s.events.map((e) => [e.id, e.event, JSON.parse(e.data!).image.id])).toEqual([
      ['1', 'transition', b.id],
      ['2', 'progress', b.id],
    ]);
  });

  it('?id= of an unknown image is 404 image_not_found', async () => {
    const r = await getJson(`${h.base}/events?id=nope`);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('image_not_found');
  });

  it('sends a heartbeat comment periodically', async () => {
    const s = open();
    await s.until(() => s.comments.filter((c) => c === 'heartbeat').length >= 2, 2000);
    expect(s.events).toEqual([]);
  });

  it('unsubscribes when the client goes away, and the server keeps serving', async () => {
    const s = open();
    await waitSubscribed(1);
    s.close();
    const deadline = Date.now() + 2000;
    while (h.engine.listenerCount() > 0 && Date.now() < deadline) await tick(5);
    expect(h.engine.listenerCount()).toBe(0);
    const image = h.engine.addImage('BaseImage');
    h.engine.transition(image.id, 'queued');
    expect((await fetch(h.base)).status).toBe(200);
  });

  it('accepts Accept: */* and no Accept, and refuses Accept: application/json (406)', async () => {
    const anyType = open('', { accept: '*/*' });
    const none = open('', {});
    await waitSubscribed(2);
    expect([anyType.status, none.status]).toEqual([200, 200]);
    const r = await getJson(`${h.base}/events`, { headers: { accept: 'application/json' } });
    expect(r.status).toBe(406);
    expect(r.body.error.code).toBe('not_acceptable');
  });

  it('ends every open stream when the server closes', async () => {
    const s = open();
    await waitSubscribed(1);
    await h.api.close();
    await s.until(() => s.ended);
    expect(s.error).toBeNull();
    expect(h.engine.listenerCount()).toBe(0);
  });
});
