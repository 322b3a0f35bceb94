/**
 * A daemon killed with SIGKILL in the middle of writing transitions must
 * leave a catalog that a restart can trust: each image's phase, its last
 * transition and its persisted snapshot agree, with no gap in the numbering.
 *
 * The writer runs in a child Node process, which cannot load TypeScript, so
 * it imports the compiled store from dist/ (`npm test` builds it first).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/store/index.js';
import { useTempDirs } from './helpers.js';

const tempDir = useTempDirs('ifstore-crash-');
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const distStore = join(repoRoot, 'dist', 'src', 'store');
const ROUNDS = 5;

/** Fails (never skips) when the compiled store is missing or older than its source. */
function compiledStore(): string {
  const index = join(distStore, 'index.js');
  if (!existsSync(index)) throw new Error(`${index} is missing: run npm run build first`);
  const srcDir = join(repoRoot, 'src', 'store');
  for (const name of readdirSync(srcDir).filter((n) => n.endsWith('.ts'))) {
    const js = join(distStore, name.replace(/\.ts$/, '.js'));
    if (!existsSync(js) || statSync(js).mtimeMs < statSync(join(srcDir, name)).mtimeMs) {
      throw new Error(`${js} is missing or older than src/store/${name}: run npm run build first`);
    }
  }
  return index;
}

/** The writer: inserts images and records transitions as fast as it can, until it is killed. */
function childScript(storeUrl: string): string {
  return `
import { randomUUID } from 'node:crypto';
import { Catalog } from ${JSON.stringify(storeUrl)};

const STATES = ['validating', 'preparing', 'installing', 'customizing', 'snapshotting', 'complete'];
const catalog = Catalog.open(process.argv[2]);
const live = [];
process.stdout.write('ready\\n');
for (;;) {
  if (live.length < 3 || Math.random() < 0.1) {
    const id = randomUUID();
    const now = new Date().toISOString();
    catalog.insertImage({
      id, kind: 'BaseImage', status: 'NEW', phase: 'queued', activity: 'Queued', error: null,
      percentComplete: 0, template: '<template/>', icicle: null, parameters: { n: live.length }, properties: {},
      baseImageId: null, targetImageId: null, target: null, provider: null, identifierOnProvider: null,
      providerAccountIdentifier: null, bodyPath: null, deadline: Date.now() + 3600000, created: now, updated: now,
    });
    live.push({ id, seq: 0, from: null });
    continue;
  }
  const image = live[Math.floor(Math.random() * live.length)];
  const seq = image.seq + 1;
  const to = STATES[(seq - 1) % STATES.length];
  catalog.recordTransition(
    { imageId: image.id, from: image.from, to, event: 'STEP_' + seq },
    { status: 'BUILDING', percentComplete: seq % 101, activity: 'step ' + seq },
    // The seq this snapshot was written with, and padding so that pages split.
    { value: to, seq, context: { pad: 'x'.repeat(Math.floor(Math.random() * 3000)) } },
  );
  image.seq = seq;
  image.from = to;
  if (Math.random() < 0.2) catalog.updateImage(image.id, { activity: 'progress ' + seq, properties: { at: seq } });
}
`;
}

function waitForReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`writer did not start in 10 s: ${err}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`writer exited early (code ${code}, signal ${signal}): ${err}`));
    });
  });
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Checks the invariants a restart relies on; returns how many transitions the catalog holds. */
function checkCatalog(file: string): number {
  const catalog = Catalog.open(file);
  try {
    expect(catalog.integrityCheck()).toEqual([]);
    let total = 0;
    for (const image of catalog.listImages()) {
      const transitions = catalog.transitions(image.id);
      const snapshot = catalog.loadSnapshot(image.id) as { value: string; seq: number } | null;
      total += transitions.length;
      expect(transitions.map((t) => t.seq)).toEqual(transitions.map((_, i) => i + 1));
      const last = transitions.at(-1);
      if (!last) {
        expect(image.phase).toBe('queued');
        expect(snapshot).toBeNull();
        continue;
      }
      expect(image.phase).toBe(last.to);
      expect(image.percentComplete).toBe(last.seq % 101);
      expect(snapshot).toMatchObject({ seq: last.seq, value: last.to });
      for (const [i, t] of transitions.entries()) expect(t.from).toBe(i === 0 ? null : transitions[i - 1]!.to);
      // The catalog is writable after the crash and numbering goes on where it stopped.
      const next = catalog.recordTransition({ imageId: image.id, from: last.to, to: 'failed', event: 'RESTART' }, { status: 'FAILED' }, { seq: last.seq + 1 });
      expect(next.seq).toBe(last.seq + 1);
    }
    return total;
  } finally {
    catalog.close();
  }
}

describe('a writer killed with SIGKILL', () => {
  it(`leaves a catalog whose phases, transitions and snapshots agree (${ROUNDS} rounds)`, { timeout: 60_000 }, async () => {
    const storeUrl = pathToFileURL(compiledStore()).href;
    for (let round = 0; round < ROUNDS; round++) {
      const dir = tempDir();
      const script = join(dir, 'writer.mjs');
      const file = join(dir, 'state', 'catalog.sqlite');
      writeFileSync(script, childScript(storeUrl));
      const child = spawn(process.execPath, [script, file], { stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        await waitForReady(child);
        await new Promise((r) => setTimeout(r, 200 + Math.random() * 250));
        expect(child.exitCode, 'writer still running when killed').toBeNull();
        child.kill('SIGKILL');
        expect((await exited(child)).signal).toBe('SIGKILL');
      } finally {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited(child);
        }
      }
      const transitions = checkCatalog(file);
      expect(transitions, `round ${round}: the writer got some work done`).toBeGreaterThan(20);
    }
  });
});
