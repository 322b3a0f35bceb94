import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Client, ClientError } from '../../src/cli/client/http.js';
import { KINDS } from '../../src/cli/client/images.js';
import type { ProgressState } from '../../src/cli/client/progress.js';
import { follow } from '../../src/cli/client/watch.js';
import { onCleanup } from './helpers.js';

const BASE = KINDS[0];

/** A stand-in daemon: `statuses` are answered to successive GETs of image `x` (the last one repeats). */
async function fakeDaemon(statuses: string[], events: (res: http.ServerResponse) => void) {
  let gets = 0;
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith('/imagefactory/events')) return events(res);
    if (req.url === '/imagefactory/base_images/x') {
      const status = statuses[Math.min(gets++, statuses.length - 1)]!;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ base_image: { _type: 'BaseImage', id: 'x', status, phase: status.toLowerCase(), percent_complete: status === 'COMPLETE' ? 100 : 50, status_detail: { activity: status, error: null } } }));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"not_found","message":"no route"}}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => server.close(r)));
  onCleanup(() => server.closeAllConnections());
  const client = new Client({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  onCleanup(() => client.close());
  return { client, gets: () => gets, server };
}

function record() {
  const updates: ProgressState[] = [];
  const notes: string[] = [];
  return { updates, notes, onUpdate: (s: ProgressState) => updates.push(s), onNote: (n: string) => notes.push(n) };
}

describe('following an image', () => {
  it('polls every interval when the event stream cannot be opened, until the status is final', async () => {
    const d = await fakeDaemon(['BUILDING', 'BUILDING', 'COMPLETE'], (res) => res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"code":"internal","message":"boom"}}'));
    const r = record();
    const final = await follow({ client: d.client, kind: BASE, id: 'x', pollMs: 10, ...r });
    expect(final.status).toBe('COMPLETE');
    expect(r.notes[0]).toMatch(/no event stream .*polling/);
    expect(r.updates.map((u) => u.status)).toEqual(['BUILDING', 'BUILDING', 'COMPLETE']);
  });

  it('switches to polling when the event stream breaks in the middle', async () => {
    const d = await fakeDaemon(['BUILDING', 'BUILDING', 'BUILDING', 'FAILED'], (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: progress\ndata: {"image":{"status":"BUILDING","phase":"installing","activity":"Writing","percent_complete":70}}\n\n');
      setTimeout(() => res.destroy(), 50);
    });
    const r = record();
    const final = await follow({ client: d.client, kind: BASE, id: 'x', pollMs: 10, checkMs: 10_000, ...r });
    expect(final.status).toBe('FAILED');
    expect(r.updates).toContainEqual({ status: 'BUILDING', phase: 'installing', activity: 'Writing', percent: 70 });
    expect(r.notes).toContainEqual(expect.stringMatching(/event stream ended; polling/));
  });

  it('still ends when the stream stays silent, by checking the image now and then', async () => {
    const d = await fakeDaemon(['BUILDING', 'BUILDING', 'COMPLETE'], (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': heartbeat\n\n');
    });
    const r = record();
    const final = await follow({ client: d.client, kind: BASE, id: 'x', checkMs: 20, ...r });
    expect(final.status).toBe('COMPLETE');
    expect(r.notes).toEqual([]);
  });

  it('gives up with code unreachable when the daemon stays away while polling', async () => {
    const d = await fakeDaemon(['BUILDING'], (res) => res.writeHead(500).end());
    const r = record();
    const following = follow({ client: d.client, kind: BASE, id: 'x', pollMs: 10, maxUnreachableMs: 100, ...r });
    await new Promise((res) => setTimeout(res, 50));
    d.server.closeAllConnections();
    d.server.close();
    d.client.close();
    const err = await following.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).code).toBe('unreachable');
    expect(r.notes.some((n) => n.includes('retrying'))).toBe(true);
  });
});
