import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Request } from 'polka';
import { PROJECT_ROOT } from '../../version.js';
import { ApiError } from '../errors.js';
import type { MediaType } from '../route.js';

/**
 * The files of the inspector page, all served by the daemon itself: the page,
 * its stylesheet, its script (compiled from `page.ts`) and Graphviz as
 * WebAssembly (viz.js's browser build, which carries the .wasm inline, so it
 * needs no second request and no network).
 */

/**
 * Nothing from another origin, no inline script or style; `wasm-unsafe-eval`
 * lets the page compile viz.js's WebAssembly (and nothing else: no eval).
 */
export const INSPECTOR_CSP = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface InspectorAsset {
  /** The URL path it is served at. */
  path: string;
  /** Its media type; also what the route answers to in `Accept`. */
  produces: MediaType;
  contentType: string;
  /** Where the file is, found when first served. */
  file: () => string;
  /** What the file is, for 404-free error messages and the API description. */
  description: string;
  /** Rewrites the text before it is served. */
  transform?: (text: string) => string;
}

const here = join(PROJECT_ROOT, 'src', 'api', 'inspector');
const compiled = join(PROJECT_ROOT, 'dist', 'src', 'api', 'inspector');

/** viz.js's browser build: the ES module beside the CommonJS one that `require` resolves. */
function vizFile(): string {
  const cjs = createRequire(import.meta.url).resolve('@viz-js/viz');
  return join(dirname(cjs), 'viz.js');
}

// The REST API's media types do not name these three; the page answers to them all the same.
const HTML = 'text/html' as MediaType;
const CSS = 'text/css' as MediaType;
const JS = 'text/javascript' as MediaType;

export const INSPECTOR_ASSETS: readonly InspectorAsset[] = [
  { path: '/inspector', produces: HTML, contentType: 'text/html; charset=utf-8', file: () => join(here, 'index.html'), description: 'the inspector page' },
  {
    path: '/inspector/assets/inspector.js',
    produces: JS,
    contentType: 'text/javascript; charset=utf-8',
    file: () => join(compiled, 'page.js'),
    description: "the page's script (compiled from src/api/inspector/page.ts)",
    // The source map is not served; without this line a browser's devtools would ask for it.
    transform: (text) => text.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n'),
  },
  {
    // Imported by the page's script as `../auth/signature-base.js`: the OAuth base string, shared with the daemon's verifier.
    path: '/inspector/auth/signature-base.js',
    produces: JS,
    contentType: 'text/javascript; charset=utf-8',
    file: () => join(compiled, '..', 'auth', 'signature-base.js'),
    description: 'the OAuth 1.0a signature base string the page signs its requests with (compiled from src/api/auth/signature-base.ts)',
    transform: (text) => text.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n'),
  },
  { path: '/inspector/assets/inspector.css', produces: CSS, contentType: 'text/css; charset=utf-8', file: () => join(here, 'inspector.css'), description: "the page's stylesheet" },
  {
    path: '/inspector/assets/viz.js',
    produces: JS,
    contentType: 'text/javascript; charset=utf-8',
    file: vizFile,
    description: 'Graphviz compiled to WebAssembly (@viz-js/viz, browser ES module with the .wasm inline)',
  },
];

interface Loaded {
  mtimeMs: number;
  size: number;
  body: Buffer;
  gzipped: Buffer | null;
  etag: string;
}

/** Read once, re-read when the file changes; gzip is computed once per version (viz.js is 1.2 MB, 0.4 MB gzipped). */
const cache = new Map<string, Loaded>();

async function load(asset: InspectorAsset): Promise<Loaded> {
  let file: string;
  try {
    file = asset.file();
  } catch (e) {
    throw new ApiError(503, 'inspector_unavailable', `${asset.description} is missing: ${(e as Error).message}`);
  }
  const info = await stat(file).catch(() => null);
  if (!info?.isFile()) {
    const hint = file.startsWith(compiled) ? ' (build the daemon with `npm run build`)' : '';
    throw new ApiError(503, 'inspector_unavailable', `${asset.description} is missing${hint}`);
  }
  const known = cache.get(asset.path);
  if (known && known.mtimeMs === info.mtimeMs && known.size === info.size) return known;
  let body = await readFile(file);
  if (asset.transform) body = Buffer.from(asset.transform(body.toString('utf8')));
  const loaded: Loaded = {
    mtimeMs: info.mtimeMs,
    size: info.size,
    body,
    gzipped: body.length > 1024 ? gzipSync(body) : null,
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
  };
  cache.set(asset.path, loaded);
  return loaded;
}

function acceptsGzip(req: Request): boolean {
  const header = req.headers['accept-encoding'];
  if (typeof header !== 'string') return false;
  return header.split(',').some((part) => {
    const [coding = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = params.map((p) => /^q=([\d.]+)$/.exec(p)?.[1]).find((v) => v !== undefined);
    return coding === 'gzip' && (q === undefined || Number(q) > 0);
  });
}

/** Answers with one asset: revalidated each time (ETag), gzipped when the client takes it, under the inspector's CSP. */
export async function sendAsset(req: Request, res: ServerResponse, asset: InspectorAsset): Promise<void> {
  const loaded = await load(asset);
  const headers: Record<string, string> = {
    'content-type': asset.contentType,
    'cache-control': 'no-cache',
    etag: loaded.etag,
    vary: 'accept-encoding',
    'content-security-policy': INSPECTOR_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cross-origin-resource-policy': 'same-origin',
  };
  if (asset.produces === HTML) headers['x-frame-options'] = 'DENY';
  const match = req.headers['if-none-match'];
  if (typeof match === 'string' && match.split(',').some((t) => t.trim() === loaded.etag || t.trim() === `W/${loaded.etag}`)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const gzip = loaded.gzipped !== null && acceptsGzip(req);
  const body = gzip ? loaded.gzipped! : loaded.body;
  if (gzip) headers['content-encoding'] = 'gzip';
  headers['content-length'] = String(body.length);
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}
