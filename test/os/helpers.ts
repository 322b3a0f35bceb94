import { spawnSync } from 'node:child_process';
import { createReadStream, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseTdlOrThrow, type Template } from '../../src/tdl/index.js';
import { tdl } from '../tdl/helpers.js';

export const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/', import.meta.url));

/** Every example template, parsed, by file name without `.tdl`. */
export function exampleTemplates(): Map<string, Template> {
  const out = new Map<string, Template>();
  for (const file of readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith('.tdl')).sort()) {
    out.set(file.replace(/\.tdl$/, ''), parseTdlOrThrow(readFileSync(join(EXAMPLES_DIR, file), 'utf8')));
  }
  return out;
}

export function example(name: string): Template {
  const t = exampleTemplates().get(name);
  if (!t) throw new Error(`no example ${name}`);
  return t;
}

/** A template for `<os>` head `name/version/arch`, with `install` and extra template XML. */
export function template(opts: { name: string; version: string; arch?: string; install?: string; rootpw?: string | null; extra?: string }): Template {
  const install = opts.install ?? `<install type="url"><url>http://mirror.example.com/pub/tree</url></install>`;
  const rootpw = opts.rootpw === undefined ? '<rootpw>s3cret-Pw</rootpw>' : opts.rootpw === null ? '' : `<rootpw>${opts.rootpw}</rootpw>`;
  const os = `<os><name>${opts.name}</name><version>${opts.version}</version><arch>${opts.arch ?? 'x86_64'}</arch>${install}${rootpw}</os>`;
  return parseTdlOrThrow(tdl(opts.extra ?? '', os));
}

/** The lines of a generated file, trimmed, without blanks. */
export function linesOf(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/** The one line that starts with `prefix` (fails when there are none or several). */
export function lineStarting(text: string, prefix: string): string {
  const found = linesOf(text).filter((l) => l.startsWith(prefix));
  if (found.length !== 1) throw new Error(`expected one line starting with ${JSON.stringify(prefix)}, found ${found.length}:\n${text}`);
  return found[0]!;
}

export async function tempDir(prefix: string): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `imagefactory-test-${prefix}-`));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

export function toolAvailable(command: string, args: string[] = ['--version']): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

export function runTool(command: string, args: string[], input?: Buffer): { status: number; stdout: Buffer; stderr: string } {
  const r = spawnSync(command, args, { input, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
}

export interface FakeMirror {
  url: string;
  /** GET and HEAD requests per path. */
  hits: Map<string, number>;
  /** Paths whose GET sends the headers and the first `stallAfter` bytes, then nothing more. */
  stall: Set<string>;
  /** Delay (ms) before a GET is answered, to keep downloads in flight. */
  delayMs: number;
  close(): Promise<void>;
}

/** A static HTTP server on 127.0.0.1 over `root`, standing in for a distribution mirror. */
export async function serveMirror(root: string, stallAfter = 64 * 1024): Promise<FakeMirror> {
  const hits = new Map<string, number>();
  const stall = new Set<string>();
  const sockets = new Set<import('node:net').Socket>();
  const mirror = { hits, stall, delayMs: 0 } as FakeMirror;
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const file = normalize(join(root, path));
    if (!file.startsWith(root + sep)) {
      res.writeHead(403).end();
      return;
    }
    void (async () => {
      if (mirror.delayMs > 0 && req.method === 'GET') await new Promise((r) => setTimeout(r, mirror.delayMs));
      const st = await stat(file).catch(() => null);
      if (!st?.isFile()) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      res.writeHead(200, { 'content-length': String(st.size), 'content-type': 'application/octet-stream' });
      if (req.method === 'HEAD') return res.end();
      if (stall.has(path)) {
        const head = readFileSync(file).subarray(0, stallAfter);
        res.write(head);
        return; // never ends: the client must give up
      }
      createReadStream(file).pipe(res);
    })();
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  mirror.url = `http://127.0.0.1:${address.port}`;
  mirror.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return mirror;
}
