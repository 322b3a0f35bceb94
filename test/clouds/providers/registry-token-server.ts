// A token server for docker-registry's `auth: token` mode, as Docker Hub, GHCR or Harbor run one:
// it checks the Basic credentials and issues a short JWT (RS256, its certificate in `x5c`) granting
// the scope asked for. The registry trusts the certificate through `rootcertbundle`.
import { execFileSync } from 'node:child_process';
import { createSign, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
  /** Tokens issued so far (to check that none shows up anywhere). */
  tokens: string[];
  stop(): Promise<void>;
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export async function startTokenServer(dir: string, username: string, password: string): Promise<TokenServer> {
  const keyFile = join(dir, 'token-key.pem');
  const certFile = join(dir, 'token-cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=imagefactory-test-token'], { stdio: 'ignore' });
  const key = readFileSync(keyFile, 'utf8');
  const der = readFileSync(certFile, 'utf8').replace(/-----[^-]+-----|\s/g, '');
  const service = 'imagefactory-test-registry';
  const issuer = 'imagefactory-test-issuer';
  const tokens: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const auth = req.headers.authorization ?? '';
    const [user, pass] = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString('utf8').split(':');
    if (!auth.startsWith('Basic ') || user !== username || pass !== password) {
      res.writeHead(401, { 'content-type': 'application/json' });
      return res.end('{"details":"wrong credentials"}');
    }
    const access = url.searchParams.getAll('scope').map((scope) => {
      const [type, name, actions] = scope.split(':');
      return { type, name, actions: (actions ?? '').split(',').filter(Boolean) };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [der] }));
    const claims = b64url(JSON.stringify({ iss: issuer, sub: user, aud: url.searchParams.get('service'), exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access }));
    const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(key).toString('base64url');
    const token = `${header}.${claims}.${signature}`;
    tokens.push(token);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, expires_in: 300 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('the token server has no port');
  return {
    realm: `http://127.0.0.1:${address.port}/token`,
    service,
    issuer,
    certFile,
    tokens,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
