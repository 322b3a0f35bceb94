import { beforeAll, describe, expect, it } from 'vitest';
import { cli, getJson, liveDaemon, requireFreshBuild, scratch, startCli, template, waitStatus } from './helpers.js';

beforeAll(requireFreshBuild);

async function built(url: string, version: string): Promise<string> {
  const tdl = scratch().file(`${version}.tdl`, template(version));
  return (await cli(['base_image', tdl, '--url', url])).out.trim();
}

/** Until the image answers 404 or DELETED. */
async function waitGone(url: string, collection: string, id: string): Promise<void> {
  const end = Date.now() + 20_000;
  for (;;) {
    const res = await fetch(`${url}/imagefactory/${collection}/${id}`);
    if (res.status === 404) return;
    const image = Object.values((await res.json()) as Record<string, { status: string }>)[0]!;
    if (image.status === 'DELETED') return;
    if (Date.now() > end) throw new Error(`${id} is still ${image.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('imagefactory images, delete, cancel, watch and plugins against a live daemon', () => {
  it('images lists every kind as a table of id, kind, status, phase and percent', async () => {
    const daemon = await liveDaemon();
    const ok = await built(daemon.url, 'ok');
    const failed = await built(daemon.url, 'fail-customize');
    const target = (await cli(['target_image', 'qcow2', '--id', ok, '--url', daemon.url])).out.trim();
    const r = await cli(['images', '--url', daemon.url]);
    expect(r.code, r.err).toBe(0);
    const [header, ...rows] = r.out.trim().split('\n').map((l) => l.split(/\s{2,}/));
    expect(header).toEqual(['ID', 'KIND', 'STATUS', 'PHASE', 'PERCENT']);
    expect(rows).toEqual([
      [ok, 'BaseImage', 'COMPLETE', 'complete', '100%'],
      [failed, 'BaseImage', 'FAILED', 'failed', '60%'],
      [target, 'TargetImage', 'COMPLETE', 'complete', '100%'],
    ]);
  });

  it('images QUERY keeps the images whose fields match the JSON query, and --output json prints them', async () => {
    const daemon = await liveDaemon();
    const ok = await built(daemon.url, 'ok');
    const failed = await built(daemon.url, 'fail-customize');
    const complete = await cli(['images', '{"status":"COMPLETE"}', '--url', daemon.url]);
    expect(complete.out).toContain(ok);
    expect(complete.out).not.toContain(failed);
    const json = await cli(['images', '{"status":"failed","status_detail":{"error_code":"command_failed"}}', '--output', 'json', '--url', daemon.url]);
    expect(json.code, json.err).toBe(0);
    expect(JSON.parse(json.out).map((i: { id: string }) => i.id)).toEqual([failed]);
    const none = await cli(['images', '{"_type":"ProviderImage"}', '--url', daemon.url]);
    expect(none).toMatchObject({ code: 0, out: '' });
    expect(none.err).toContain('no image matches the query');
    const bad = await cli(['images', 'status=COMPLETE', '--url', daemon.url]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('QUERY must be a JSON object');
  });

  it('delete ID finds the image’s collection and deletes it; a base image with children needs --cascade', async () => {
    const daemon = await liveDaemon();
    const base = await built(daemon.url, 'ok');
    const target = (await cli(['target_image', 'qcow2', '--id', base, '--url', daemon.url])).out.trim();
    const refused = await cli(['delete', base, '--url', daemon.url]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('conflict:');
    expect(refused.err).toContain('cascade');
    const r = await cli(['delete', base, '--cascade', '--url', daemon.url]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain(`deleting base image ${base}`);
    await waitGone(daemon.url, 'target_images', target);
    await waitGone(daemon.url, 'base_images', base);
    const listed = await cli(['images', '--url', daemon.url]);
    expect(listed.out).not.toContain(target);
    expect(listed.out).not.toContain(base);
    const unknown = await cli(['delete', '00000000-0000-0000-0000-000000000000', '--url', daemon.url]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('no image with id 00000000-0000-0000-0000-000000000000');
  });

  it('cancel ID of a build in progress exits 0; of a finished image it exits 1 with the daemon’s reason', async () => {
    const daemon = await liveDaemon();
    const tdl = scratch().file('stuck.tdl', template('stuck'));
    const id = (await cli(['base_image', tdl, '--no-wait', '--url', daemon.url])).out.trim();
    const r = await cli(['cancel', id, '--output', 'json', '--url', daemon.url]);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).id).toBe(id);
    await waitStatus(daemon.url, 'base_images', id, ['CANCELLED']);
    const again = await cli(['cancel', id, '--url', daemon.url]);
    expect(again.code).toBe(1);
    expect(again.err).toContain('only a build in progress can be cancelled');
  });

  it('watch ID follows a build to its end: 0 when COMPLETE, 1 when FAILED', async () => {
    const daemon = await liveDaemon();
    const tdl = scratch().file('slow.tdl', template('slow'));
    const id = (await cli(['base_image', tdl, '--no-wait', '--url', daemon.url])).out.trim();
    const r = await cli(['watch', id, '--url', daemon.url]);
    expect(r.code, r.err).toBe(0);
    expect(r.out.trim()).toBe(id);
    expect(r.err).toMatch(/COMPLETE complete 100%/);
    const failed = await built(daemon.url, 'fail-customize');
    const w = await cli(['watch', failed, '--output', 'json', '--url', daemon.url]);
    expect(w.code).toBe(1);
    expect(JSON.parse(w.out)).toMatchObject({ id: failed, status: 'FAILED' });
    expect(w.err).toContain(`image ${failed} FAILED: command "break-things" exited with 3: boom`);
  });

  it('Ctrl-C during watch stops watching with 130 and leaves the build running', async () => {
    const daemon = await liveDaemon();
    const tdl = scratch().file('stuck.tdl', template('stuck'));
    const id = (await cli(['base_image', tdl, '--no-wait', '--url', daemon.url])).out.trim();
    const watching = startCli(['watch', id, '--url', daemon.url]);
    await watching.waitFor('Installer running');
    watching.proc.kill('SIGINT');
    expect((await watching.done).code).toBe(130);
    expect((await getJson(`${daemon.url}/imagefactory/base_images/${id}`)).base_image.status).toBe('BUILDING');
    await cli(['cancel', id, '--url', daemon.url]);
  });

  it('plugins lists the daemon’s plugins; --id shows one; an unknown id exits 1', async () => {
    const daemon = await liveDaemon();
    const r = await cli(['plugins', '--url', daemon.url]);
    expect(r.code, r.err).toBe(0);
    expect(r.out.split('\n')[0]).toMatch(/^ID\s+TYPE\s+VERSION\s+TARGETS\s+DESCRIPTION$/);
    expect(r.out).toMatch(/^TestOS\s+os\s+1\.0\s+TestOS\s+Test-only OS plugin/m);
    const one = await cli(['plugins', '--id', 'TestOS', '--url', daemon.url]);
    expect(one.code, one.err).toBe(0);
    expect(one.out).toContain('id: TestOS');
    expect(one.out).toContain('type: os');
    const json = await cli(['plugins', '--id', 'TestOS', '--output', 'json', '--url', daemon.url]);
    expect(JSON.parse(json.out)).toMatchObject({ id: 'TestOS', type: 'os', _type: 'plugin' });
    const unknown = await cli(['plugins', '--id', 'NoSuch', '--url', daemon.url]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('plugin_not_found: no plugin with id NoSuch');
  });

  it('IMAGEFACTORY_URL chooses the daemon when --url is not given', async () => {
    const daemon = await liveDaemon();
    const r = await cli(['plugins'], { IMAGEFACTORY_URL: daemon.url });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('TestOS');
  });
});
