/**
 * HTTPS as an operator gets it from `imagefactoryd` with no TLS flag: a
 * transient self-signed certificate made at start, its key kept mode 0600 in
 * the state directory, its fingerprint in the log; `--ssl_pem` serves the
 * operator's certificate (and refuses a key file others can read); `--no_ssl`
 * serves HTTP. Hrefs follow the scheme served.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../src/api/auth/sign.js';
import { itWithTools, tool } from '../tools.js';
import { template } from './helpers.js';
import { CONSUMER, DAEMON_BIN, request, secureHome, startLive, type LiveDaemon } from './live.js';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

beforeAll(() => {
  if (!existsSync(DAEMON_BIN)) throw new Error(`${DAEMON_BIN} is missing: run \`npm run build\` first`);
});

function setUpHome(extra: Record<string, unknown> = {}) {
  const home = secureHome(extra);
  cleanups.push(() => home.remove());
  return home;
}

async function live(config: string, ...flags: string[]): Promise<LiveDaemon> {
  const d = await startLive(config, ...flags);
  cleanups.push(() => d.stop());
  return d;
}

/** A signed POST of a base image; the answer's image. */
async function submit(url: string, ca?: string) {
  const target = `${url}/imagefactory/base_images`;
  const r = await request(target, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: signRequest({ method: 'POST', url: target, consumer: CONSUMER }).header },
    body: JSON.stringify({ base_image: { template: template('ok') } }),
    ...(ca ? { ca } : {}),
  });
  expect(r.status, r.text).toBe(202);
  return { image: r.json().base_image, location: r.headers.location, fingerprint256: r.fingerprint256 };
}

/** Runs the daemon until it exits by itself (a refused start); its exit code and output. */
function refusedStart(config: string, ...flags: string[]) {
  const r = spawnSync(process.execPath, [DAEMON_BIN, '--foreground', '--port', '0', '--config', config, ...flags], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('HTTPS by default', () => {
  itWithTools([tool('curl')], 'makes a transient self-signed certificate at start, logs its fingerprint, keeps the key 0600 in the state directory, and removes both at stop', async () => {
    const home = setUpHome();
    const daemon = await live(home.config);
    expect(daemon.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

    const logged = daemon.logs().find((l) => l.tls === 'transient')!;
    expect(logged.msg).toContain('transient self-signed certificate');
    const tlsDir = join(home.dirs.storage, 'tls');
    const certFile = join(tlsDir, 'transient-cert.pem');
    const keyFile = join(tlsDir, 'transient-key.pem');
    expect(logged.certFile).toBe(certFile);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(keyFile).uid).toBe(process.getuid!());
    const cert = new X509Certificate(readFileSync(certFile));
    expect(cert.issuer).toBe(cert.subject);
    // Signed by its own key: self-signed.
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(logged.fingerprint256).toBe(cert.fingerprint256);

    // What a client sees on the wire is that certificate: curl -k calls it self-signed.
    const root = await request(`${daemon.url}/imagefactory`);
    expect(root.status).toBe(200);
    expect(root.fingerprint256).toBe(cert.fingerprint256);
    const curl = spawnSync('curl', ['-skv', `${daemon.url}/imagefactory`], { encoding: 'utf8' });
    expect(curl.status).toBe(0);
    expect(curl.stderr).toMatch(/self[- ]signed certificate/i);
    expect(JSON.parse(curl.stdout)).toMatchObject({ name: 'imagefactory', api_version: '2.0' });
    // Trusting exactly this certificate works; hrefs say https.
    const { image, location } = await submit(daemon.url, readFileSync(certFile, 'utf8'));
    expect(image.href).toBe(`${daemon.url}/imagefactory/base_images/${image.id}`);
    expect(location).toBe(image.href);
    expect(image.transitions_href.startsWith('https://')).toBe(true);

    // The key never reaches the log or stdout.
    const key = readFileSync(keyFile, 'utf8');
    const keyBody = key.split('\n').slice(1, -2).join('');
    expect(daemon.output()).not.toContain('PRIVATE KEY');
    expect(daemon.output()).not.toContain(keyBody.slice(0, 40));

    const { code } = await daemon.stop();
    expect(code).toBe(0);
    expect(readdirSync(tlsDir)).toEqual([]);
  });

  it('makes a new key at every start: the next daemon has another fingerprint', async () => {
    const home = setUpHome();
    const first = await live(home.config);
    const a = (await request(`${first.url}/imagefactory`)).fingerprint256;
    await first.stop();
    const second = await live(home.config);
    const b = (await request(`${second.url}/imagefactory`)).fingerprint256;
    expect(a).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(b).not.toBe(a);
  });
});

describe('--ssl_pem FILE', () => {
  /** A certificate and its key for 127.0.0.1 in one PEM file, made by openssl; and a second key that does not match. */
  function pemFiles(dir: string) {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    const made = spawnSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=if-operator-cert', '-addext', 'subjectAltName=IP:127.0.0.1'],
      { encoding: 'utf8' },
    );
    if (made.status !== 0) throw new Error(made.stderr);
    const other = spawnSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], { encoding: 'utf8' }).stdout;
    const encrypted = spawnSync('openssl', ['pkey', '-in', key, '-aes256', '-passout', 'pass:x'], { encoding: 'utf8' }).stdout;
    const write = (name: string, text: string, mode: number) => {
      const path = join(dir, name);
      writeFileSync(path, text, { mode });
      chmodSync(path, mode);
      return path;
    };
    const certText = readFileSync(cert, 'utf8');
    const keyText = readFileSync(key, 'utf8');
    return {
      fingerprint256: new X509Certificate(certText).fingerprint256,
      keyText,
      good: write('daemon.pem', certText + keyText, 0o600),
      groupReadable: write('group.pem', certText + keyText, 0o640),
      worldReadable: write('world.pem', certText + keyText, 0o644),
      mismatched: write('mismatched.pem', certText + other, 0o600),
      encrypted: write('encrypted.pem', certText + encrypted, 0o600),
      certOnly: write('cert-only.pem', certText, 0o644),
    };
  }

  itWithTools([tool('openssl', ['version'])], 'serves the operator’s certificate, and writes no transient one', async () => {
    const home = setUpHome();
    const pem = pemFiles(home.root);
    for (const file of [pem.good, pem.groupReadable]) {
      const daemon = await live(home.config, '--ssl_pem', file);
      const root = await request(`${daemon.url}/imagefactory`);
      expect(root.fingerprint256).toBe(pem.fingerprint256);
      expect(daemon.logs().find((l) => l.tls === 'file')).toMatchObject({ certFile: file, fingerprint256: pem.fingerprint256 });
      expect(existsSync(join(home.dirs.storage, 'tls'))).toBe(false);
      expect(daemon.output()).not.toContain(pem.keyText.split('\n')[1]!);
      expect((await daemon.stop()).code).toBe(0);
    }
  });

  itWithTools([tool('openssl', ['version'])], 'refuses, with exit 2 and a clear message, a key others can read, a key of another certificate, an encrypted key, and no key', () => {
    const home = setUpHome();
    const pem = pemFiles(home.root);
    const cases: [string, RegExp][] = [
      [pem.worldReadable, /holds a private key and every user can read it \(mode 0644\); restrict it \(chmod 600 /],
      [pem.mismatched, /does not belong to its first certificate \(CN=if-operator-cert\)/],
      [pem.encrypted, /is encrypted; the daemon cannot ask for a passphrase/],
      [pem.certOnly, /must hold exactly one private key, found 0/],
      [join(home.root, 'absent.pem'), /cannot read the TLS PEM file .*absent\.pem \(--ssl_pem\): it does not exist/],
    ];
    for (const [file, message] of cases) {
      const r = refusedStart(home.config, '--ssl_pem', file);
      expect(r.code, r.err).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toMatch(message);
      expect(r.err.startsWith('imagefactoryd: ')).toBe(true);
      expect(r.err).not.toContain('PRIVATE KEY');
    }
  });
});

describe('--no_ssl', () => {
  it('serves plain HTTP, with http hrefs', async () => {
    const home = setUpHome();
    const daemon = await live(home.config, '--no_ssl');
    expect(daemon.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const { image } = await submit(daemon.url);
    expect(image.href).toBe(`${daemon.url}/imagefactory/base_images/${image.id}`);
    expect(existsSync(join(home.dirs.storage, 'tls'))).toBe(false);
    expect(daemon.logs().some((l) => 'tls' in l)).toBe(false);
  });
});
