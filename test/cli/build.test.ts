import { describe, expect, it, beforeAll } from 'vitest';
import { cli, getJson, liveDaemon, requireFreshBuild, scratch, startCli, template, waitStatus } from './helpers.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

beforeAll(requireFreshBuild);

describe('imagefactory base_image, target_image and provider_image against a live daemon', () => {
  it('base_image waits for the build, shows its progress as plain lines on a pipe, prints the id and exits 0', async () => {
    const daemon = await liveDaemon();
    const tdl = scratch().file('ok.tdl', template('ok'));
    const r = await cli(['base_image', tdl, '--url', daemon.url]);
    expect(r.code, r.err).toBe(0);
    const id = r.out.trim();
    expect(id).toMatch(UUID);
    expect(r.err).toContain(`base image ${id} submitted`);
    expect(r.err).not.toContain('\r');
    const lines = r.err.trim().split('\n');
    expect(lines.some((l) => /^\d+:\d\d BUILDING installing \d+% Writing the disk$/.test(l))).toBe(true);
    expect(lines).toContain(lines.find((l) => /^\d+:\d\d COMPLETE complete 100% /.test(l)));
    expect(new Set(lines).size).toBe(lines.length); // one line per change, never the same twice
    expect(r.err).toContain(`base image ${id} COMPLETE`);
    expect((await getJson(`${daemon.url}/imagefactory/base_images/${id}`)).base_image.status).toBe('COMPLETE');
  });

  it('--output json prints the final image as JSON on stdout', async () => {
    const daemon = await liveDaemon();
    const tdl = scratch().file('ok.tdl', template('ok'));
    const r = await cli(['base_image', tdl, '--output', 'json', '--url', daemon.url]);
    expect(r.code, r.err).toBe(0);
    const image = JSON.parse(r.out);
    expect(image).toMatchObject({ _type: 'BaseImage', status: 'COMPLETE', percent_complete: 100, phase: 'complete' });
    expect(image.id).toMatch(UUID);
  });

  it('--no-wait prints the id at once and exits 0 while the build goes on', async () => {
    const daemon = await liveDaemon();
    const tdl = scratch().file('slow.tdl', template('slow'));
    const r = await cli(['base_image', tdl, '--no-wait', '--url', daemon.url]);
    expect(r.code, r.err).toBe(0);
    const id = r.out.trim();
    expect(id).toMatch(UUID);
    expect(['NEW', 'PENDING', 'BUILDING']).toContain((await getJson(`${daemon.url}/imagefactory/base_images/${id}`)).base_image.status);
    await waitStatus(daemon.url, 'base_images', id, ['COMPLETE']);
  });

  it('--no-wait --output json prints the image as submitted', async () => {
    const daemon = await liveDaemon();
    const tdl = scratch().file('ok.tdl', template('ok'));
    const r = await cli(['base_image', tdl, '--no-wait', '--output', 'json', '--url', daemon.url]);
    expect(r.code, r.err).toBe(0);
    const image = JSON.parse(r.out);
    expect(image._type).toBe('BaseImage');
    expect(['NEW', 'PENDING', 'BUILDING']).toContain(image.status);
    expect(image.template).toContain('<rootpw>********</rootpw>');
  });

  it('a build that fails exits 1 with its status and error on stderr', async () => {
    const daemon = await liveDaemon();
    const tdl = scratch().file('fail.tdl', template('fail-customize'));
    const r = await cli(['base_image', tdl, '--url', daemon.url]);
    expect(r.code).toBe(1);
    const id = r.out.trim();
    expect(r.err).toContain(`imagefactory: image ${id} FAILED: command "break-things" exited with 3: boom`);
  });

  it('target_image --id builds from a base image and exits 0; a target no cloud plugin serves ends FAILED and exits 1', async () => {
    const daemon = await liveDaemon();
    const tdl = scratch().file('ok.tdl', template('ok'));
    const base = (await cli(['base_image', tdl, '--url', daemon.url])).out.trim();
    const r = await cli(['target_image', 'qcow2', '--id', base, '--url', daemon.url]);
    expect(r.code, r.err).toBe(0);
    const target = (await getJson(`${daemon.url}/imagefactory/target_images/${r.out.trim()}`)).target_image;
    expect(target).toMatchObject({ base_image_id: base, target: 'qcow2', status: 'COMPLETE', properties: { format: 'qcow2', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    const none = await cli(['target_image', 'rackspace', '--id', base, '--url', daemon.url]);
    expect(none.code).toBe(1);
    expect(none.err).toContain(`image ${none.out.trim()} FAILED: no cloud plugin handles the target "rackspace"`);
  });

  it('target_image --template builds the base image first', async () => {
    const daemon = await liveDaemon();
    const tdl = scratch().file('ok.tdl', template('ok'));
    const r = await cli(['target_image', 'vmdk', '--template', tdl, '--output', 'json', '--url', daemon.url]);
    expect(r.code, r.err).toBe(0);
    const target = JSON.parse(r.out);
    expect(target).toMatchObject({ _type: 'TargetImage', target: 'vmdk', status: 'COMPLETE' });
    expect((await getJson(`${daemon.url}/imagefactory/base_images/${target.base_image_id}`)).base_image.status).toBe('COMPLETE');
  });

  it('target_image with a template that does not validate is refused at once (the client asks for strict handling): exit 1, nothing created', async () => {
    const daemon = await liveDaemon();
    const tdl = scratch().file('bad.tdl', '<template><name>x</name></template>');
    const r = await cli(['target_image', 'qcow2', '--template', tdl, '--url', daemon.url]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('missing required element <os>');
    expect((await getJson(`${daemon.url}/imagefactory/target_images`)).target_images).toEqual([]);
  });

  it('provider_image sends @name as a provider name, a provider file as its content, and the credentials file without ever printing it', async () => {
    const daemon = await liveDaemon();
    const files = scratch();
    const tdl = files.file('ok.tdl', template('ok'));
    const creds = files.file('creds.xml', '<provider_credentials><ec2_credentials><access_key>AKIA-SECRET-123</access_key></ec2_credentials></provider_credentials>');
    const providerDoc = files.file('provider.json', '{"name":"my-region","endpoint":"https://cloud.example.com"}');

    const byName = await cli(['provider_image', 'ec2', '@ec2-us-east-1', creds, '--template', tdl, '--output', 'json', '--url', daemon.url]);
    expect(byName.code).toBe(1);
    const named = JSON.parse(byName.out);
    expect(named).toMatchObject({ _type: 'ProviderImage', provider: 'ec2-us-east-1', target: 'ec2', status: 'FAILED' });
    expect(byName.err).toContain(`image ${named.id} FAILED:`);

    const byFile = await cli(['provider_image', 'ec2', providerDoc, creds, '--template', tdl, '--no-wait', '--output', 'json', '--url', daemon.url]);
    expect(byFile.code, byFile.err).toBe(0);
    expect(JSON.parse(byFile.out).provider).toBe('{"name":"my-region","endpoint":"https://cloud.example.com"}');
    for (const r of [byName, byFile]) expect(r.out + r.err).not.toContain('AKIA-SECRET-123');
  });

  it('provider_image with an unreadable credentials file is a usage error (exit 2) and sends nothing', async () => {
    const daemon = await liveDaemon();
    const r = await cli(['provider_image', 'ec2', '@ec2-us-east-1', '/nonexistent/creds.xml', '--id', 'x', '--url', daemon.url]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('CREDENTIALS: cannot read /nonexistent/creds.xml');
    expect((await getJson(`${daemon.url}/imagefactory/provider_images`)).provider_images).toEqual([]);
  });

  it('merges --parameters FILE, then each --parameter NAME VALUE, then each --file-parameter NAME FILE (checked over REST)', async () => {
    const daemon = await liveDaemon();
    const files = scratch();
    const tdl = files.file('ok.tdl', template('ok'));
    const json = files.file('params.json', JSON.stringify({ a: 'from-file', b: 'from-file', c: 'from-file', n: 7, nested: { k: true } }));
    const script = files.file('script.sh', '#!/bin/sh\necho hello\n');
    const r = await cli([
      'base_image',
      tdl,
      '--file-parameter',
      'c',
      script,
      '--parameters',
      json,
      '--parameter',
      'b',
      'from-flag',
      '--parameter',
      'c',
      'overridden-by-file-parameter',
      '--parameter',
      'd',
      '42',
      '--no-wait',
      '--url',
      daemon.url,
    ]);
    expect(r.code, r.err).toBe(0);
    const image = await waitStatus(daemon.url, 'base_images', r.out.trim(), ['COMPLETE']);
    expect(image.parameters).toEqual({ a: 'from-file', b: 'from-flag', c: '#!/bin/sh\necho hello\n', d: '42', n: 7, nested: { k: true } });
  });

  it('cancel ID stops a stuck build: the client waiting for it exits 1 and prints that it was cancelled', async () => {
    const daemon = await liveDaemon();
    const tdl = scratch().file('stuck.tdl', template('stuck'));
    const waiting = startCli(['base_image', tdl, '--url', daemon.url]);
    await waiting.waitFor('Installer running');
    const id = /base image (\S+) submitted/.exec(waiting.err())![1]!;
    const cancel = await cli(['cancel', id, '--url', daemon.url]);
    expect(cancel.code, cancel.err).toBe(0);
    expect(cancel.err).toContain(`cancelling base image ${id}`);
    const r = await waiting.done;
    expect(r.code).toBe(1);
    expect(r.err).toContain(`imagefactory: image ${id} CANCELLED: the build was cancelled`);
  });

  it('Ctrl-C (SIGINT) while waiting asks the daemon to cancel, keeps watching until CANCELLED, and exits 1', async () => {
    const daemon = await liveDaemon();
    const tdl = scratch().file('stuck.tdl', template('stuck'));
    const waiting = startCli(['base_image', tdl, '--url', daemon.url]);
    await waiting.waitFor('Installer running');
    const id = /base image (\S+) submitted/.exec(waiting.err())![1]!;
    waiting.proc.kill('SIGINT');
    const r = await waiting.done;
    expect(r.code).toBe(1);
    expect(r.err).toContain(`cancelling base image ${id}`);
    expect(r.err).toMatch(/BUILDING cancelling/);
    expect(r.err).toContain(`image ${id} CANCELLED: the build was cancelled`);
    expect((await getJson(`${daemon.url}/imagefactory/base_images/${id}`)).base_image.status).toBe('CANCELLED');
  });

  it('a second Ctrl-C stops waiting at once with exit code 130', async () => {
    const daemon = await liveDaemon();
    const tdl = scratch().file('stuck.tdl', template('stuck'));
    const waiting = startCli(['base_image', tdl, '--url', daemon.url]);
    await waiting.waitFor('Installer running');
    waiting.proc.kill('SIGINT');
    await waiting.waitFor('Ctrl-C again');
    waiting.proc.kill('SIGINT');
    const r = await waiting.done;
    expect(r.code).toBe(130);
    expect(r.err).toContain('stopped waiting');
  });
});
