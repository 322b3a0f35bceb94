import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, onCleanup, requireFreshBuild, scratch } from './helpers.js';
import { itWithTools, tool } from '../tools.js';

beforeAll(requireFreshBuild);

/** An https server with a fresh self-signed certificate for 127.0.0.1 that answers the plugin list. */
async function selfSignedServer() {
  const dir = scratch().dir;
  const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
  const made = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
    { encoding: 'utf8' },
  );
  if (made.status !== 0) throw new Error(made.stderr);
  const server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ plugins: [{ id: 'TlsOS', type: 'os', version: '1', targets: [['TlsOS', null, null]], description: 'over https' }] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => server.close(r)));
  onCleanup(() => server.closeAllConnections());
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, cert };
}

describe('imagefactory over https', () => {
  itWithTools([tool('openssl', ['version'])], 'refuses an untrusted certificate with exit 3 and a hint, and accepts it with --ca or --insecure', async () => {
    const { url, cert } = await selfSignedServer();
    const untrusted = await cli(['plugins', '--url', url]);
    expect(untrusted.code).toBe(3);
    expect(untrusted.err).toContain(`cannot reach the imagefactory daemon at ${url}`);
    expect(untrusted.err).toContain('--ca FILE');
    for (const flags of [['--ca', cert], ['--insecure']]) {
      const r = await cli(['plugins', ...flags, '--url', url]);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain('TlsOS');
    }
    const missing = await cli(['plugins', '--ca', '/nonexistent/ca.pem', '--url', url]);
    expect(missing.code).toBe(2);
  });
});
