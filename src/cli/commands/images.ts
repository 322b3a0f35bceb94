import { EXIT, UsageError } from '../client/exit.js';
import { ClientError } from '../client/http.js';
import { getImage, KINDS, type ImageDetail, type Kind } from '../client/images.js';
import { formatTable } from '../client/table.js';
import type { Context } from './context.js';

/**
 * `images [QUERY]`: every image of the three collections as a table (id,
 * kind, status, phase, percent), oldest first. QUERY is the original's JSON
 * object, e.g. '{"status":"COMPLETE"}': an image is listed when each field
 * equals the query's (text compared without regard to case; nested objects
 * match on the keys they give).
 */
export async function listImages(ctx: Context, query: string | undefined): Promise<number> {
  const wanted = parseQuery(query);
  const images = (await allImages(ctx)).filter((i) => wanted === undefined || matches(i, wanted));
  images.sort((a, b) => String(a.created ?? '').localeCompare(String(b.created ?? '')));
  if (ctx.json) {
    ctx.io.out.write(JSON.stringify(images, null, 2) + '\n');
    return EXIT.ok;
  }
  if (!images.length) {
    ctx.io.err.write(`imagefactory: ${wanted === undefined ? 'no images' : 'no image matches the query'}\n`);
    return EXIT.ok;
  }
  const rows = images.map((i) => [i.id, i._type, i.status, i.phase ?? '', `${i.percent_complete ?? 0}%`]);
  ctx.io.out.write(formatTable([['ID', 'KIND', 'STATUS', 'PHASE', 'PERCENT'], ...rows]));
  return EXIT.ok;
}

function parseQuery(query: string | undefined): Record<string, unknown> | undefined {
  if (query === undefined || query.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(query);
  } catch (e) {
    throw new UsageError(`QUERY must be a JSON object such as '{"status":"COMPLETE"}' (${(e as Error).message})`, 'images');
  }
  if (!isObject(parsed)) throw new UsageError(`QUERY must be a JSON object such as '{"status":"COMPLETE"}'`, 'images');
  return parsed;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export function matches(value: unknown, query: unknown): boolean {
  if (isObject(query)) return isObject(value) && Object.entries(query).every(([k, q]) => matches(value[k], q));
  if (Array.isArray(query)) return Array.isArray(value) && query.length === value.length && query.every((q, i) => matches(value[i], q));
  if (query === null) return value === null || value === undefined;
  if (value === null || value === undefined || typeof value === 'object') return false;
  return String(value).toLowerCase() === String(query).toLowerCase();
}

/** The details of every image: the collections list summaries, each image's GET adds phase and the rest. */
async function allImages(ctx: Context): Promise<ImageDetail[]> {
  const ids = (await Promise.all(KINDS.map(async (kind) => (await listed(ctx, kind)).map((id) => ({ kind, id }))))).flat();
  const out: ImageDetail[] = [];
  const queue = [...ids];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      try {
        out.push(await getImage(ctx.client, next.kind, next.id));
      } catch (e) {
        if (!(e instanceof ClientError && e.status === 404)) throw e; // deleted meanwhile
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, queue.length) }, worker));
  return out;
}

async function listed(ctx: Context, kind: Kind): Promise<string[]> {
  const { body } = await ctx.client.json<Record<string, { [singular: string]: { id?: string } }[]>>('GET', `/imagefactory/${kind.collection}`);
  return (body?.[kind.collection] ?? []).map((entry) => entry[kind.singular]?.id).filter((id): id is string => typeof id === 'string');
}
