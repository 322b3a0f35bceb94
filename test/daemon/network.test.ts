/**
 * The network front door of a live daemon (issue 11, item 4): loopback by
 * default; every interface only when the operator says so, with a warning when
 * OAuth is off; cross-site form posts refused (the confirmed CSRF: a
 * form-encoded POST with `Origin: https://evil.example` used to be accepted).
 */
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { hostHas, itWithTools } from '../tools.js';
import { template } from './helpers.js';
import { request, secureHome, startLive, type LiveDaemon } from './live.js';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function live(...flags: string[]): Promise<{ daemon: LiveDaemon; home: ReturnType<typeof secureHome> }> {
  const home = secureHome();
  cleanups.push(() => home.remove());
  const daemon = await startLive(home.config, ...flags);
  cleanups.push(() => daemon.stop());
  return { daemon, home };
}

const external = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
/** The checks that another address of this host does or does not answer need one; its absence fails them, naming it. */
const NON_LOOPBACK = hostHas('a non-loopback IPv4 address on this host', () => external !== undefined);

/** Whether a TCP connection to host:port is accepted. */
function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
    s.setTimeout(3000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

describe('where the daemon listens', () => {
  itWithTools([NON_LOOPBACK], 'binds 127.0.0.1 by default: another address of this host does not answer, and nothing is warned', async () => {
    const { daemon } = await live();
    const port = Number(new URL(daemon.url).port);
    expect(new URL(daemon.url).hostname).toBe('127.0.0.1');
    expect(await reachable('127.0.0.1', port)).toBe(true);
    expect(await reachable(external!, port)).toBe(false);
    expect(daemon.logs().filter((l) => l.level === 40)).toEqual([]);
    // The default level logs no request lines (--verbose does).
    await request(`${daemon.url}/imagefactory`);
    await new Promise((r) => setTimeout(r, 100));
    expect(daemon.logs().some((l) => l.msg === 'request')).toBe(false);
  });

  itWithTools([NON_LOOPBACK], 'serves every interface with --address 0.0.0.0, warning when OAuth is off; the inspector page then answers loopback only', async () => {
    const { daemon } = await live('--address', '0.0.0.0', '--no_oauth', '--no_ssl');
    const port = Number(new URL(daemon.url).port);
    expect(await reachable(external!, port)).toBe(true);
    const warnings = daemon.logs().filter((l) => l.level === 40).map((l) => l.msg);
    expect(warnings).toContain('OAuth is off (--no_oauth) and the API listens on 0.0.0.0: anyone who can reach it can build, cancel and delete images');
    expect(warnings).toContain('serving plain HTTP (--no_ssl) on 0.0.0.0: requests and their signatures travel unencrypted');
    expect((await request(`http://127.0.0.1:${port}/inspector`)).status).toBe(200);
    const remote = await request(`http://${external}:${port}/inspector`);
    expect([remote.status, remote.json().error.code]).toEqual([403, 'inspector_loopback_only']);

    const withOAuth = await live('--address', '0.0.0.0');
    expect(withOAuth.daemon.logs().filter((l) => l.level === 40)).toEqual([]);
  });
});

describe('cross-site requests on a daemon without OAuth', () => {
  it('refuses the form post of another site with 403 and builds nothing; curl’s form post and same-origin JSON still work', async () => {
    const { daemon } = await live('--no_oauth', '--no_ssl');
    const list = `${daemon.url}/imagefactory/base_images`;
    const form = `template=${encodeURIComponent(template('ok'))}`;
    const csrf = await request(list, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' }, body: form });
    expect(csrf.status).toBe(403);
    expect(csrf.json().error).toEqual({
      code: 'cross_site_refused',
      message: 'a request from another site (Origin https://evil.example) may not change anything on this daemon',
      details: { origin: 'https://evil.example', expected: daemon.url },
    });
    // A form from any page, even with no Origin header but a browser's Sec-Fetch-Site.
    const blind = await request(list, { method: 'POST', headers: { 'content-type': 'text/plain', 'sec-fetch-site': 'cross-site' }, body: JSON.stringify({ base_image: { template: template('ok') } }) });
    expect(blind.status).toBe(403);
    expect((await request(list)).json().base_images).toEqual([]);

    expect((await request(list, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form })).status).toBe(202);
    const own = await request(list, { method: 'POST', headers: { 'content-type': 'application/json', origin: daemon.url }, body: JSON.stringify({ base_image: { template: template('ok') } }) });
    expect(own.status).toBe(202);
    expect((await request(list)).json().base_images).toHaveLength(2);
  });
});
