/**
 * Two-legged OAuth on a live daemon started with no TLS or OAuth flag, as
 * third-party clients and our own `imagefactory` meet it: the accept/reject
 * matrix over raw HTTPS with an independent signer (the `oauth-1.0a`
 * package), then through the client (flags, environment, configuration file),
 * which trusts the daemon's transient certificate without --insecure.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../src/api/auth/sign.js';
import { template } from './helpers.js';
import { CONSUMER, independentHeader, independentSigner, OTHER, request, runClient, secureHome, startLive, type LiveDaemon } from './live.js';

let home: ReturnType<typeof secureHome>;
let daemon: LiveDaemon;
let scratch: string;
let stateEnv: Record<string, string>;

beforeAll(async () => {
  home = secureHome();
  // --debug: every request is logged, so the test can check that no secret ever is.
  daemon = await startLive(home.config, '--debug');
  scratch = mkdtempSync(join(tmpdir(), 'if-oauth-test-'));
  stateEnv = { IMAGEFACTORY_STATE_DIR: home.dirs.storage };
});

afterAll(async () => {
  const stopped = await daemon?.stop();
  expect(stopped?.code).toBe(0);
  home?.remove();
  rmSync(scratch, { recursive: true, force: true });
});

const list = () => `${daemon.url}/imagefactory/base_images`;

describe('raw HTTPS with an independent OAuth 1.0a signer', () => {
  it('accepts the oauth-1.0a package’s signatures, HMAC-SHA1 and HMAC-SHA256, in the header and in the query', async () => {
    for (const method of ['HMAC-SHA1', 'HMAC-SHA256'] as const) {
      const r = await request(list(), { headers: { authorization: independentHeader(CONSUMER, 'GET', list(), undefined, method) } });
      expect(r.status, r.text).toBe(200);
      expect(r.json()).toHaveProperty('base_images');
      const oauth = independentSigner(OTHER, method);
      const url = new URL(list());
      for (const [name, value] of Object.entries(oauth.authorize({ url: list(), method: 'GET' }))) url.searchParams.append(name, String(value));
      const q = await request(url.href);
      expect(q.status, q.text).toBe(200);
    }
  });

  it('answers GET /imagefactory unsigned, and 401 with WWW-Authenticate: OAuth for a missing, wrong, altered, stale or replayed signature', async () => {
    expect((await request(`${daemon.url}/imagefactory`)).status).toBe(200);
    const signedFor = (url: string, consumer = CONSUMER) => independentHeader(consumer, 'GET', url);
    const stale = independentSigner(CONSUMER);
    stale.getTimeStamp = () => Math.floor(Date.now() / 1000) - 600;
    const replayed = signedFor(list());
    expect((await request(list(), { headers: { authorization: replayed } })).status).toBe(200);
    const cases: [string, string, Record<string, string>, string][] = [
      ['no Authorization header', list(), {}, 'oauth_parameter_absent'],
      ['a wrong secret', list(), { authorization: signedFor(list(), { key: CONSUMER.key, secret: 'not-the-secret' }) }, 'oauth_signature_invalid'],
      ['an unknown consumer', list(), { authorization: signedFor(list(), { key: 'nobody', secret: 'x' }) }, 'oauth_signature_invalid'],
      ['an altered query parameter', `${list()}?x=2`, { authorization: signedFor(`${list()}?x=1`) }, 'oauth_signature_invalid'],
      ['a signature for another path', `${daemon.url}/imagefactory/target_images`, { authorization: signedFor(list()) }, 'oauth_signature_invalid'],
      ['a timestamp ten minutes old', list(), { authorization: stale.toHeader(stale.authorize({ url: list(), method: 'GET' })).Authorization }, 'oauth_timestamp_refused'],
      ['a replayed request (reused nonce)', list(), { authorization: replayed }, 'oauth_nonce_used'],
      ['a garbled header', list(), { authorization: 'OAuth oauth_consumer_key' }, 'oauth_parameter_rejected'],
    ];
    for (const [what, url, headers, code] of cases) {
      const r = await request(url, { headers });
      expect([r.status, r.json().error.code], what).toEqual([401, code]);
      expect(r.headers['www-authenticate'], what).toMatch(/^OAuth realm="imagefactory"/);
    }
  });

  it('streams events to a client that signs the query (as browsers must), and refuses the same URL a second time', async () => {
    const events = new URL(`${daemon.url}/imagefactory/events`);
    for (const [name, value] of signRequest({ method: 'GET', url: events.href, consumer: CONSUMER }).params) events.searchParams.append(name, value);
    const seen = new Promise<string>((resolve, reject) => {
      const req = https.get(events, { rejectUnauthorized: false, headers: { accept: 'text/event-stream' } }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          if (text.includes('event: transition')) {
            resolve(text);
            req.destroy();
          }
        });
      });
      req.on('error', (e) => (e.message.includes('hang up') || (e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
    });
    await new Promise((r) => setTimeout(r, 200));
    const post = signRequest({ method: 'POST', url: list(), consumer: CONSUMER });
    const submitted = await request(list(), { method: 'POST', headers: { 'content-type': 'application/json', authorization: post.header }, body: JSON.stringify({ base_image: { template: template('ok') } }) });
    expect(submitted.status).toBe(202);
    expect(await seen).toContain(submitted.json().base_image.id);
    const again = await request(events.href, { headers: { accept: 'text/event-stream' } });
    expect([again.status, again.json().error.code]).toEqual([401, 'oauth_nonce_used']);
  });
});

describe('the imagefactory client', () => {
  it('signs with --key/--secret and trusts the daemon’s transient certificate from its state directory, without --insecure', async () => {
    const r = await runClient(['images', '--url', daemon.url, '--key', CONSUMER.key, '--secret', CONSUMER.secret], stateEnv, scratch);
    expect(r.code, r.err).toBe(0);
    // The daemon's own configuration file is enough to find the state directory.
    const viaConfig = await runClient(['plugins', '--url', daemon.url, '--key', OTHER.key, '--secret', OTHER.secret, '--signature-method', 'HMAC-SHA256'], { IMAGEFACTORYD_CONFIG: home.config }, scratch);
    expect(viaConfig.code, viaConfig.err).toBe(0);
    expect(viaConfig.out).toContain('TestOS');
  });

  it('takes the key and secret from the environment or its configuration file, which must not be readable by others', async () => {
    const env = await runClient(['images', '--url', daemon.url], { ...stateEnv, IMAGEFACTORY_KEY: CONSUMER.key, IMAGEFACTORY_SECRET: CONSUMER.secret }, scratch);
    expect(env.code, env.err).toBe(0);
    const dir = join(scratch, '.config', 'imagefactory');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'client.json');
    writeFileSync(file, JSON.stringify({ url: daemon.url, key: CONSUMER.key, secret: CONSUMER.secret, state_dir: home.dirs.storage }), { mode: 0o600 });
    try {
      const fromFile = await runClient(['images'], {}, scratch);
      expect(fromFile.code, fromFile.err).toBe(0);
      chmodSync(file, 0o644);
      const exposed = await runClient(['images'], {}, scratch);
      expect(exposed.code).toBe(2);
      expect(exposed.err).toContain(`client configuration ${file} holds an OAuth secret and other users can read it (mode 0644): chmod 600 ${file}`);
      expect(exposed.err).not.toContain(CONSUMER.secret);
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('builds a base image over HTTPS with OAuth, following it live, to COMPLETE', async () => {
    const tdl = join(scratch, 'ok.tdl');
    writeFileSync(tdl, template('ok'));
    const r = await runClient(['base_image', tdl, '--url', daemon.url, '--output', 'json'], { ...stateEnv, IMAGEFACTORY_KEY: CONSUMER.key, IMAGEFACTORY_SECRET: CONSUMER.secret }, scratch);
    expect(r.code, r.err).toBe(0);
    const image = JSON.parse(r.out);
    expect(image.status).toBe('COMPLETE');
    expect(image.href.startsWith(`${daemon.url}/`)).toBe(true);
    // It followed the build over the event stream, signed like every other request (no fallback to polling).
    expect(r.err).not.toMatch(/polling|event stream/i);
    await new Promise((done) => setTimeout(done, 200));
    expect(daemon.logs().some((l) => l.msg === 'request' && l.path === '/imagefactory/events' && l.status === 200 && l.consumer === CONSUMER.key)).toBe(true);
  });

  it('refuses a wrong secret or a missing key with exit 1 and the daemon’s reason; a key without a secret is a usage error and sends nothing', async () => {
    const wrong = await runClient(['images', '--url', daemon.url, '--key', CONSUMER.key, '--secret', 'wrong'], stateEnv, scratch);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain('oauth_signature_invalid');
    expect(wrong.err).toContain(`signed as consumer ${CONSUMER.key}; check the key and secret`);
    const none = await runClient(['images', '--url', daemon.url], stateEnv, scratch);
    expect(none.code).toBe(1);
    expect(none.err).toContain('oauth_parameter_absent');
    expect(none.err).toContain('give --key and --secret');
    const requestsBefore = daemon.logs().filter((l) => l.msg === 'request').length;
    const half = await runClient(['images', '--url', daemon.url, '--key', CONSUMER.key], stateEnv, scratch);
    expect(half.code).toBe(2);
    expect(half.err).toContain(`the OAuth key ${CONSUMER.key} was given without its secret`);
    await new Promise((r) => setTimeout(r, 200));
    expect(daemon.logs().filter((l) => l.msg === 'request').length).toBe(requestsBefore);
  });

  it('does not trust another certificate: without the daemon’s state directory it exits 3 and says where it looked', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'if-oauth-nostate-'));
    try {
      const r = await runClient(['images', '--url', daemon.url, '--key', CONSUMER.key, '--secret', CONSUMER.secret], { IMAGEFACTORY_STATE_DIR: empty }, scratch);
      expect(r.code).toBe(3);
      expect(r.err).toContain(`no daemon certificate in ${join(empty, 'tls', 'transient-cert.pem')}`);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('secrets', () => {
  it('never appear in the daemon’s log (at --debug), its answers, or --print-config', async () => {
    // After every request above: the whole log, as written.
    const output = daemon.output();
    expect(daemon.logs().filter((l) => l.msg === 'request').length).toBeGreaterThan(10);
    for (const secret of [CONSUMER.secret, OTHER.secret, 'not-the-secret']) expect(output).not.toContain(secret);
    expect(output).not.toMatch(/oauth_signature=|oauth_nonce=|PRIVATE KEY/);
    // Request lines carry the consumer key and the request id.
    expect(daemon.logs().find((l) => l.msg === 'request' && l.consumer === CONSUMER.key)).toMatchObject({ reqId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const printed = await import('node:child_process').then(({ spawnSync }) =>
      spawnSync(process.execPath, [join(process.cwd(), 'dist/src/cli/imagefactoryd.js'), '--print-config', '--config', home.config], { encoding: 'utf8' }),
    );
    expect(printed.status).toBe(0);
    expect(JSON.parse(printed.stdout).clients).toEqual({ [CONSUMER.key]: '***', [OTHER.key]: '***' });
    expect(printed.stdout + printed.stderr).not.toContain(CONSUMER.secret);
  });
});
