import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assembleEngine, type AssembleOptions, type EngineSetup } from '../../src/compose.js';
import type { Engine } from '../../src/engine/engine.js';
import type { ImageRecord } from '../../src/model/index.js';

export const TEST_PLUGINS = fileURLToPath(new URL('../fixtures/plugins/', import.meta.url));

export function testTemplate(version: string, os = 'TestOS'): string {
  return `<template><name>t-${version}</name><os><name>${os}</name><version>${version}</version><arch>x86_64</arch><install type="url"><url>http://mirror.example.com/</url></install></os></template>`;
}

/** A real engine on temp storage with the test OS plugin; `cleanup()` checks nothing of ours is left in tmp. */
export async function testEngine(overrides: Partial<EngineSetup> = {}, assemble: AssembleOptions = {}) {
  const root = mkdtempSync(join(tmpdir(), 'if-engine-test-'));
  const opts: EngineSetup = {
    storagePath: join(root, 'storage'),
    workRoot: join(root, 'work'),
    timeoutSeconds: 60,
    maxConcurrentLocal: 2,
    maxConcurrentProvider: 2,
    pluginDirs: [TEST_PLUGINS],
    poolThreads: 1,
    hypervisor: 'qemu',
    ...overrides,
  };
  const engine = await assembleEngine(opts, assemble);
  return {
    engine,
    opts,
    root,
    async restart(more: Partial<EngineSetup> = {}, assembleMore: AssembleOptions = assemble) {
      return assembleEngine({ ...opts, ...more }, assembleMore);
    },
    leftovers: () => {
      try {
        return readdirSync(opts.workRoot);
      } catch {
        return [];
      }
    },
    async cleanup(e: Engine = engine) {
      await e.shutdown().catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Resolves with the image once its status is one of `statuses`. */
export function waitFor(engine: Engine, id: string, statuses: string[], timeoutMs = 20_000): Promise<ImageRecord> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const image = engine.getImage(id);
      if (image && statuses.includes(image.status)) {
        off();
        clearTimeout(timer);
        resolve(image);
        return true;
      }
      return false;
    };
    const off = engine.subscribe(() => void check());
    const timer = setTimeout(() => {
      off();
      reject(new Error(`image ${id} did not reach ${statuses.join('|')} within ${timeoutMs} ms; it is ${engine.getImage(id)?.status}/${engine.getImage(id)?.phase}`));
    }, timeoutMs);
    check();
  });
}

export function waitForPhase(engine: Engine, id: string, phase: string, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const off = engine.subscribe((e) => {
      if (e.image.id === id && e.image.phase === phase) {
        off();
        clearTimeout(timer);
        resolve();
      }
    });
    const timer = setTimeout(() => {
      off();
      reject(new Error(`image ${id} never reached ${phase}`));
    }, timeoutMs);
    if (engine.getImage(id)?.phase === phase) {
      off();
      clearTimeout(timer);
      resolve();
    }
  });
}
