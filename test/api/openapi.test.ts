import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OPENAPI, type Operation } from '../../src/api/openapi.js';
import { toOpenApiPath } from '../../src/api/paths.js';
import { getJson, start, type Harness } from './helpers.js';

let h: Harness;
beforeEach(async () => {
  h = await start();
});
afterEach(async () => {
  await h.stop();
});

const documented = () =>
  Object.entries(OPENAPI.paths).flatMap(([path, item]) =>
    (['get', 'post', 'delete'] as const).filter((m) => item[m]).map((m) => ({ key: `${m.toUpperCase()} ${path}`, op: item[m] as Operation })),
  );

describe('GET /imagefactory/openapi.json', () => {
  it('serves an OpenAPI 3.0 document', async () => {
    const r = await getJson(`${h.base}/openapi.json`);
    expect(r.status).toBe(200);
    expect(r.body.openapi).toMatch(/^3\.0\./);
    expect(r.body).toEqual(JSON.parse(JSON.stringify(OPENAPI)));
  });

  it('describes every route registered in the server, and nothing else', () => {
    // The router's own table, not a list kept beside it.
    const table = (h.api.app as unknown as { routes: { method: string; handlers: unknown[] }[] }).routes;
    expect(table.length).toBe(h.api.routes.length);
    const registered = h.api.routes.map((r) => `${r.method} ${toOpenApiPath(r.path)}`).sort();
    const docs = documented().map((d) => d.key).sort();
    expect(new Set(registered).size).toBe(registered.length);
    expect(docs).toEqual(registered);
  });

  it('documents the routes the brief names, nested forms included', () => {
    const keys = new Set(documented().map((d) => d.key));
    for (const key of [
      'GET /imagefactory',
      'GET /imagefactory/base_images',
      'POST /imagefactory/base_images',
      'GET /imagefactory/base_images/{base_image_id}/target_images',
      'POST /imagefactory/target_images/{target_image_id}/provider_images',
      'POST /imagefactory/base_images/{base_image_id}/target_images/{target_image_id}/provider_images',
      'GET /imagefactory/base_images/{base_image_id}/target_images/{target_image_id}',
      'DELETE /imagefactory/provider_images/{provider_image_id}',
      'GET /imagefactory/target_images/{target_image_id}/raw_image',
      'POST /imagefactory/provider_images/{provider_image_id}/cancel',
      'GET /imagefactory/base_images/{base_image_id}/transitions',
      'GET /imagefactory/base_images/{base_image_id}/machine',
      'GET /imagefactory/base_images/{base_image_id}/log',
      'GET /imagefactory/events',
      'GET /imagefactory/plugins',
      'GET /imagefactory/plugins/{plugin_id}',
      'GET /imagefactory/openapi.json',
    ]) {
      expect(keys.has(key), key).toBe(true);
    }
  });

  it('has unique operation ids, declares every path parameter, and resolves every $ref', () => {
    const ops = documented();
    const ids = ops.map((o) => o.op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { key, op } of ops) {
      const inPath = [...key.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]).sort();
      const declared = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name).sort();
      expect(declared, key).toEqual(inPath);
      expect(Object.keys(op.responses).length, key).toBeGreaterThan(0);
    }
    const refs = [...JSON.stringify(OPENAPI).matchAll(/"\$ref":"#\/components\/(schemas|responses)\/([A-Za-z]+)"/g)];
    expect(refs.length).toBeGreaterThan(0);
    for (const [, section, name] of refs) {
      expect((OPENAPI.components as Record<string, Record<string, unknown>>)[section!]![name!], `${section}/${name}`).toBeDefined();
    }
  });
});
