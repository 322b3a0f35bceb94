import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/store/index.js';
import { processesOfBuild } from '../../src/engine/reaper.js';
import { daemonHome, getImage, postBase, readEvents, startDaemon, STRICT, template, waitPhase, waitStatus, type Daemon } from './helpers.js';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setUp(flags: string[] = [], extra: Record<string, unknown> = {}) {
  const home = daemonHome(extra);
  cleanups.push(() => home.remove());
  const daemon = await startDaemon(home.config, ...flags);
  cleanups.push(() => daemon.stop());
  return { home, daemon };
}

describe('imagefactoryd over REST (a real daemon on loopback)', () => {
  it('builds a base image, exposing every transition in order over /transitions and live over SSE', async () => {
    const { daemon, home } = await setUp();
    const sse = readEvents(`${daemon.url}/imagefactory/events`, (evs) => evs.some((e) => e.event === 'transition' && e.data.transition?.to === 'complete'));
    await new Promise((r) => setTimeout(r, 100));
    const posted = await postBase(daemon.url, template('ok'));
    expect(posted.status).toBe(202);
    const id = posted.body.base_image.id as string;
    expect(posted.body.base_image.template).toContain('<rootpw>********</rootpw>');
    const done = await waitStatus(daemon.url, id, ['COMPLETE', 'FAILED']);
    expect(done).toMatchObject({ status: 'COMPLETE', percent_complete: 100, phase: 'complete' });

    const transitions = (await (await fetch(`${daemon.url}/imagefactory/base_images/${id}/transitions`)).json()) as { from: string; to: string; event: string; at: string }[];
    expect(transitions.map((t) => t.to)).toEqual(['queued', 'validating', 'preparing', 'installing', 'customizing', 'snapshotting', 'complete']);
    expect(transitions.map((t) => t.at)).toEqual([...transitions.map((t) => t.at)].sort());
    const live = (await sse).filter((e) => e.event === 'transition' && e.data.transition).map((e) => e.data.transition.to);
    expect(live).toEqual(transitions.map((t) => t.to));

    const raw = await fetch(`${daemon.url}/imagefactory/base_images/${id}/raw_image`, { headers: { range: 'bytes=0-9' } });
    expect(raw.status).toBe(206);
    expect(Buffer.from(await raw.arrayBuffer())).toEqual(Buffer.alloc(10, 0x5a));
    expect(home.leftovers()).toEqual([]);
  });

  it('answers errors as JSON with the documented codes', async () => {
    const { daemon } = await setUp();
    const sparc = '<template>\n<name>x</name>\n<os><name>D</name><version>1</version><arch>sparc</arch><install type="url"><url>http://m/</url></install></os></template>';
    const invalid = await postBase(daemon.url, sparc, {}, STRICT);
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.code).toBe('template_invalid');
    expect(invalid.body.error.message).toContain('line 3, col 39: /template/os/arch');
    // A client of the original Image Factory posts and polls: 202, and the image FAILED at once with the same error.
    const polled = await postBase(daemon.url, sparc);
    expect(polled.status).toBe(202);
    expect(polled.body.base_image).toMatchObject({ status: 'FAILED', status_detail: { error_code: 'template_invalid', error: expect.stringContaining('line 3, col 39: /template/os/arch') } });
    expect((await getImage(daemon.url, polled.body.base_image.id)).status).toBe('FAILED');

    const unknown = await fetch(`${daemon.url}/imagefactory/base_images/00000000-0000-0000-0000-000000000000`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as any).error.code).toBe('image_not_found');

    const xml = await fetch(`${daemon.url}/imagefactory/base_images`, { headers: { accept: 'text/xml' } });
    expect(xml.status).toBe(406);

    const badJson = await fetch(`${daemon.url}/imagefactory/base_images`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"base_image":' });
    expect(badJson.status).toBe(400);

    const huge = await fetch(`${daemon.url}/imagefactory/base_images`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ base_image: { template: 'x'.repeat(2 * 1024 * 1024) } }),
    });
    expect(huge.status).toBe(413);

    const plugins = (await (await fetch(`${daemon.url}/imagefactory/plugins`)).json()) as any;
    expect(plugins.plugins.map((p: any) => p.id)).toContain('TestOS');
  });

  it('fails a build with no OS plugin with plugin_missing', async () => {
    const { daemon } = await setUp();
    const { body } = await postBase(daemon.url, template('9', 'Plan9'));
    const done = await waitStatus(daemon.url, body.base_image.id, ['COMPLETE', 'FAILED']);
    expect(done.status).toBe('FAILED');
    expect(done.status_detail.error).toContain('no OS plugin can build Plan9 9 x86_64');
  });

  it('with --timeout 5 ends a stuck build FAILED with code timeout within 7 s, undone, leaving nothing', async () => {
    const { daemon, home } = await setUp(['--timeout', '5']);
    const started = Date.now();
    const { body } = await postBase(daemon.url, template('stuck'));
    const id = body.base_image.id as string;
    await waitPhase(daemon.url, id, 'installing');
    const done = await waitStatus(daemon.url, id, ['FAILED', 'COMPLETE'], 10_000);
    expect(Date.now() - started).toBeLessThan(7000);
    expect(done.status_detail.error_code ?? done.status_detail.error).toMatch(/timeout|exceeded its deadline/);
    const log = await (await fetch(`${daemon.url}/imagefactory/base_images/${id}/log`)).text();
    expect(log).toMatch(/undo install: done[\s\S]*undo prepare: done/);
    expect(processesOfBuild(id)).toEqual([]);
    expect(home.leftovers()).toEqual([]);
  });

  it('cancels a build over REST: CANCELLED within 5 s, no process, no file', async () => {
    const { daemon, home } = await setUp();
    const { body } = await postBase(daemon.url, template('stuck'));
    const id = body.base_image.id as string;
    await waitPhase(daemon.url, id, 'installing');
    const res = await fetch(`${daemon.url}/imagefactory/base_images/${id}/cancel`, { method: 'POST' });
    expect(res.status).toBe(202);
    const done = await waitStatus(daemon.url, id, ['CANCELLED', 'FAILED', 'COMPLETE'], 5000);
    expect(done.status).toBe('CANCELLED');
    expect(processesOfBuild(id)).toEqual([]);
    expect(home.leftovers()).toEqual([]);
  });

  it('survives kill -9 mid-build: the restarted daemon resumes the build, the catalog is intact, no orphan remains', async () => {
    const home = daemonHome();
    cleanups.push(() => home.remove());
    const first = await startDaemon(home.config);
    const { body } = await postBase(first.url, template('slow'));
    const id = body.base_image.id as string;
    await waitPhase(first.url, id, 'installing');
    // The step's process starts a moment after the state is entered.
    for (let i = 0; i < 100 && processesOfBuild(id).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await first.stop('SIGKILL');
    // The installer's process group outlives a SIGKILLed daemon: it is an orphan until the next start.
    expect(processesOfBuild(id).length).toBeGreaterThan(0);

    const catalog = Catalog.open(join(home.dirs.storage, 'catalog.sqlite'));
    expect(catalog.integrityCheck()).toEqual([]);
    expect(catalog.getImage(id)!.phase).toBe('installing');
    catalog.close();

    const second = await startDaemon(home.config);
    cleanups.push(() => second.stop());
    const done = await waitStatus(second.url, id, ['COMPLETE', 'FAILED']);
    expect(done.status).toBe('COMPLETE');
    const log = readFileSync(join(home.dirs.storage, 'logs', `${id}.log`), 'utf8');
    expect(log).toMatch(/daemon restarted: resuming in state installing; reaped process \d+/);
    expect(processesOfBuild(id)).toEqual([]);
    expect(home.leftovers()).toEqual([]);
  });

  it('marks a build that cannot resume FAILED with interrupted after kill -9', async () => {
    const home = daemonHome();
    cleanups.push(() => home.remove());
    const first = await startDaemon(home.config);
    const { body } = await postBase(first.url, template('stuck'));
    const id = body.base_image.id as string;
    await waitPhase(first.url, id, 'installing');
    await first.stop('SIGKILL');
    // Without its plugin the install step cannot run again.
    const second = await startDaemon(home.config, '--plugins', join(home.root, 'no-plugins'));
    cleanups.push(() => second.stop());
    const image = await getImage(second.url, id);
    expect(image.status).toBe('FAILED');
    expect(image.status_detail.error_code).toBe('interrupted');
    expect(processesOfBuild(id)).toEqual([]);
    expect(home.leftovers()).toEqual([]);
  });
});

describe('callbacks and the machine view', () => {
  it('PUTs the image JSON to every callback URL on each status change, with Basic auth from the URL', async () => {
    const received: { status: string; auth: string | undefined }[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        expect(req.method).toBe('PUT');
        received.push({ status: JSON.parse(body).base_image.status, auth: req.headers.authorization });
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as { port: number }).port;
    const { daemon } = await setUp();
    const { body } = await postBase(daemon.url, template('ok'), { callbacks: [`http://hook:pa55@127.0.0.1:${port}/done`] });
    await waitStatus(daemon.url, body.base_image.id, ['COMPLETE']);
    const end = Date.now() + 5000;
    while (!received.some((r) => r.status === 'COMPLETE') && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect(received.map((r) => r.status)).toEqual(['NEW', 'BUILDING', 'COMPLETE']);
    expect(new Set(received.map((r) => r.auth))).toEqual(new Set([`Basic ${Buffer.from('hook:pa55').toString('base64')}`]));
    expect(daemon.output()).not.toContain('pa55');
    const shown = await getImage(daemon.url, body.base_image.id);
    expect(JSON.stringify(shown)).not.toContain('pa55');
  });

  it('serves the machine definition with the current and visited states for drawing', async () => {
    const { daemon } = await setUp();
    const { body } = await postBase(daemon.url, template('ok'));
    await waitStatus(daemon.url, body.base_image.id, ['COMPLETE']);
    const view = (await (await fetch(`${daemon.url}/imagefactory/base_images/${body.base_image.id}/machine`)).json()) as any;
    expect(view.value).toBe('complete');
    expect(view.visited).toEqual(['queued', 'validating', 'preparing', 'installing', 'customizing', 'snapshotting', 'complete']);
    expect(Object.keys(view.definition.states)).toEqual(expect.arrayContaining(['queued', 'installing', 'failing', 'cancelling', 'complete', 'failed', 'cancelled']));
  });
});
