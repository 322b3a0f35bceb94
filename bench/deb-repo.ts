import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join, normalize } from 'node:path';

/**
 * A tiny unsigned apt repository, made and served by a test or a benchmark:
 * `.deb` packages built with dpkg-deb, a flat index by dpkg-scanpackages
 * (package dpkg-dev), a Release file, served over HTTP on an address of
 * this host. Its source line is `deb http://HOST:PORT/ ./`.
 */

export interface DebSpec {
  name: string;
  version?: string;
  /** Body of the package's postinst (a shell script), run as root where the package is installed. */
  postinst?: string;
  /** Files the package installs: path (absolute) → content. */
  files?: Record<string, string>;
}

export interface DebRepo {
  /** `http://HOST:PORT/` */
  url: string;
  /** `deb http://HOST:PORT/ ./` */
  sourceLine: string;
  /** Every request the server answered, `METHOD PATH`, in order. */
  requests: string[];
  close(): Promise<void>;
}

function must(command: string, args: string[], cwd?: string): string {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

/** Builds the packages and the index into `dir`. */
export function buildDebRepo(dir: string, packages: DebSpec[]): void {
  mkdirSync(dir, { recursive: true });
  for (const p of packages) {
    const version = p.version ?? '1.0';
    const root = join(dir, `${p.name}-build`);
    mkdirSync(join(root, 'DEBIAN'), { recursive: true });
    writeFileSync(join(root, 'DEBIAN/control'), `Package: ${p.name}\nVersion: ${version}\nArchitecture: all\nMaintainer: imagefactory tests <tests@example.invalid>\nDescription: imagefactory test package ${p.name}\n`);
    if (p.postinst !== undefined) {
      writeFileSync(join(root, 'DEBIAN/postinst'), `#!/bin/sh\n${p.postinst}\nexit 0\n`);
      chmodSync(join(root, 'DEBIAN/postinst'), 0o755);
    }
    for (const [path, content] of Object.entries(p.files ?? {})) {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), content);
    }
    must('dpkg-deb', ['--root-owner-group', '--build', root, join(dir, `${p.name}_${version}_all.deb`)]);
    spawnSync('rm', ['-rf', root]);
  }
  const index = must('dpkg-scanpackages', ['--multiversion', '.', '/dev/null'], dir);
  writeFileSync(join(dir, 'Packages'), index);
  const digest = (algo: string) => createHash(algo).update(index).digest('hex');
  writeFileSync(
    join(dir, 'Release'),
    `Origin: imagefactory-test\nLabel: imagefactory-test\nDate: ${new Date().toUTCString()}\nMD5Sum:\n ${digest('md5')} ${Buffer.byteLength(index)} Packages\nSHA256:\n ${digest('sha256')} ${Buffer.byteLength(index)} Packages\n`,
  );
}

/** The first IPv4 address of this host that is not loopback: guests on user networking reach the host there. */
export function hostAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('this host has no non-loopback IPv4 address for a guest to reach');
}

/** Serves `dir` on `address` (a free port), as an apt repository. */
export async function serveDebRepo(dir: string, address: string, hostName = address): Promise<DebRepo> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0]!)).replace(/^(\.\.[/\\])+/, '');
    const file = join(dir, path);
    try {
      if (!file.startsWith(dir) || !statSync(file).isFile()) throw new Error('not a file');
      res.writeHead(200, { 'content-length': String(statSync(file).size) });
      res.end(req.method === 'HEAD' ? undefined : readFileSync(file));
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  const url = `http://${hostName}:${(server.address() as AddressInfo).port}/`;
  return {
    url,
    sourceLine: `deb ${url} ./`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
