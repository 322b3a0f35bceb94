// Debian's docker-registry (OCI distribution 2.8) on a free port, with htpasswd (bcrypt) auth and
// deletes enabled, its storage in the test's directory.
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, startService, type Service } from '../../../bench/providers/services.js';
import type { TokenServer } from './registry-token-server.js';

/** With `token`, the registry asks for Bearer tokens from that server instead of checking htpasswd itself. */
export async function startRegistry(dir: string, username: string, password: string, token?: TokenServer): Promise<Service> {
  const port = await freePort();
  const name = token ? 'registry-token' : 'registry';
  // bcrypt from Debian's python3-bcrypt; the password goes through stdin, not the command line.
  const hash = execFileSync('/usr/bin/python3', ['-c', 'import bcrypt,sys; print(bcrypt.hashpw(sys.stdin.read().encode(), bcrypt.gensalt(rounds=5)).decode())'], { input: password })
    .toString()
    .trim();
  await writeFile(join(dir, 'htpasswd'), `${username}:${hash}\n`);
  await writeFile(
    join(dir, `${name}.yml`),
    [
      'version: 0.1',
      'log:',
      '  level: info',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, `${name}-data`)}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      'auth:',
      ...(token
        ? ['  token:', `    realm: ${token.realm}`, `    service: ${token.service}`, `    issuer: ${token.issuer}`, `    rootcertbundle: ${token.certFile}`]
        : ['  htpasswd:', '    realm: imagefactory-test', `    path: ${join(dir, 'htpasswd')}`]),
      '',
    ].join('\n'),
  );
  return startService({ command: 'docker-registry', args: ['serve', join(dir, `${name}.yml`)], logFile: join(dir, `${name}.log`), port, readyPath: '/v2/' });
}
