import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Temp directories made by a test file; `removeAll` in afterEach. */
export function tempDirs() {
  const made: string[] = [];
  return {
    make(): string {
      const dir = mkdtempSync(join(tmpdir(), 'imgfac-plugins-'));
      made.push(dir);
      return dir;
    },
    removeAll(): void {
      for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const MAINTAINER = { name: 'Test Maintainer', email: 'test@example.com', url: 'https://example.com' };

/** A complete, valid .info document; `fields` replace or add fields, `undefined` removes one. */
export function infoDoc(type: 'os' | 'cloud', targets: unknown, fields: Record<string, unknown> = {}): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    type,
    targets,
    description: `a ${type} plugin for tests`,
    maintainer: MAINTAINER,
    version: '1.0',
    license: 'Apache-2.0',
    ...fields,
  };
  for (const [key, value] of Object.entries(doc)) if (value === undefined) delete doc[key];
  return doc;
}

export function writeInfo(dir: string, id: string, doc: unknown): void {
  writeFileSync(join(dir, `${id}.info`), typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2));
}

export function writeModule(dir: string, file: string, source: string): void {
  writeFileSync(join(dir, file), source);
}

/**
 * Source of an OS plugin module whose steps log `<tag>:<step>:run` through
 * `ctx.log`, so a test can tell which plugin it got. `omit` leaves a step out.
 */
export function osModuleSource(tag: string, opts: { omit?: string; async?: boolean } = {}): string {
  const steps = ['prepare', 'install', 'customize']
    .filter((step) => step !== opts.omit)
    .map((step) => `    ${step}: { run: async (ctx) => ctx.log('${tag}:${step}:run'), undo: async (ctx) => ctx.log('${tag}:${step}:undo') },`)
    .join('\n');
  return `export default ${opts.async ? 'async ' : ''}() => ({\n${steps}\n});\n`;
}

/** Writes `ID.info` for an OS plugin and its module `id.mjs`. */
export function writeOsPlugin(dir: string, id: string, targets: unknown, tag = id): void {
  writeModule(dir, `${id}.mjs`, osModuleSource(tag));
  writeInfo(dir, id, infoDoc('os', targets, { module: `./${id}.mjs` }));
}
