import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Stream, getJson, start, tick, type Harness } from './helpers.js';

let h: Harness;
beforeEach(async () => {
  h = await start();
});
afterEach(async () => {
  await h.stop();
});

describe('GET …/log', () => {
  it('answers the log as text/plain', async () => {
    const image = h.engine.addImage('BaseImage', { status: 'COMPLETE' });
    h.engine.appendLog(image.id, 'line one\nline two\n');
    const res = await fetch(`${h.base}/base_images/${image.id}/log`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toBe('line one\nline two\n');
  });

  it('answers an empty 200 while there is no log', async () => {
    const image = h.engine.addImage('BaseImage');
    const res = await fetch(`${h.base}/base_images/${image.id}/log`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  it('answers under nested paths and 404s an unknown image', async () => {
    const base = h.engine.addImage('BaseImage');
    const target = h.engine.addImage('TargetImage', { baseImageId: base.id });
    h.engine.appendLog(target.id, 'adapting\n');
    expect(await (await fetch(`${h.base}/base_images/${base.id}/target_images/${target.id}/log`)).text()).toBe('adapting\n');
    const r = await getJson(`${h.base}/target_images/nope/log`);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('image_not_found');
  });

  it('honours Accept: text/plain and refuses Accept: application/json', async () => {
    const image = h.engine.addImage('BaseImage');
    expect((await fetch(`${h.base}/base_images/${image.id}/log`, { headers: { accept: 'text/plain' } })).status).toBe(200);
    expect((await fetch(`${h.base}/base_images/${image.id}/log`, { headers: { accept: 'application/json' } })).status).toBe(406);
  });

  it('?follow=1 sends the log so far, then new text, and ends when the build is final', async () => {
    const image = h.engine.addImage('BaseImage', { status: 'BUILDING', phase: 'installing' });
    h.engine.transition(image.id, 'installing', { status: 'BUILDING' });
    h.engine.appendLog(image.id, 'before\n');
    const s = new Stream(`${h.base}/base_images/${image.id}/log?follow=1`);
    await s.until(() => s.text.includes('before\n'));
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toBe('text/plain; charset=utf-8');
    h.engine.appendLog(image.id, 'during 1\n');
    h.engine.appendLog(image.id, 'during 2\n');
    await s.until(() => s.text.includes('during 2\n'));
    expect(s.ended).toBe(false);
    h.engine.progress(image.id, 50);
    await tick();
    expect(s.ended).toBe(false);
    h.engine.appendLog(image.id, 'last words\n');
    h.engine.transition(image.id, 'complete', { status: 'COMPLETE' });
    await s.until(() => s.ended);
    expect(s.text).toBe('before\nduring 1\nduring 2\nlast words\n');
    expect(h.engine.followerCount(image.id)).toBe(0);
    expect(h.engine.listenerCount()).toBe(0);
  });

  it('?follow=1 ends when the image is deleted', async () => {
    const image = h.engine.addImage('BaseImage', { status: 'BUILDING' });
    const s = new Stream(`${h.base}/base_images/${image.id}/log?follow=1`);
    await s.until(() => h.engine.followerCount(image.id) === 1);
    h.engine.appendLog(image.id, 'x\n');
    h.engine.deleteImage(image.id);
    await s.until(() => s.ended);
    expect(s.text).toBe('x\n');
  });

  it('?follow=1 loses and doubles nothing when text arrives while the old log is replayed', async () => {
    const image = h.engine.addImage('BaseImage', { status: 'BUILDING' });
    const big = 'y'.repeat(64 * 1024) + '\n';
    for (let i = 0; i < 20; i++) h.engine.appendLog(image.id, big);
    const s = new Stream(`${h.base}/base_images/${image.id}/log?follow=1`);
    await s.until(() => h.engine.followerCount(image.id) === 1);
    h.engine.appendLog(image.id, 'fresh\n');
    h.engine.transition(image.id, 'failed', { status: 'FAILED' });
    await s.until(() => s.ended);
    expect(s.text).toBe(big.repeat(20) + 'fresh\n');
  });

  it('?follow=1 on a finished build just sends the log', async () => {
    const image = h.engine.addImage('BaseImage', { status: 'COMPLETE' });
    h.engine.appendLog(image.id, 'done\n');
    const res = await fetch(`${h.base}/base_images/${image.id}/log?follow=1`);
    expect(await res.text()).toBe('done\n');
  });

  it('stops following when the client goes away', async () => {
    const image = h.engine.addImage('BaseImage', { status: 'BUILDING' });
    h.engine.appendLog(image.id, 'a\n');
    const s = new Stream(`${h.base}/base_images/${image.id}/log?follow=1`);
    await s.until(() => s.text === 'a\n');
    expect(h.engine.followerCount(image.id)).toBe(1);
    s.close();
    const deadline = Date.now() + 2000;
    while ((h.engine.followerCount(image.id) > 0 || h.engine.listenerCount() > 0) && Date.now() < deadline) await tick();
    expect(h.engine.followerCount(image.id)).toBe(0);
    expect(h.engine.listenerCount()).toBe(0);
    // Writing after the client left must not hurt the server.
    h.engine.appendLog(image.id, 'b\n');
    expect((await fetch(h.base)).status).toBe(200);
  });
});
