import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { processesOfBuild } from '../../src/engine/reaper.js';
import { EngineError } from '../../src/engine/errors.js';
import type { EngineEvent } from '../../src/engine/types.js';
import { Catalog } from '../../src/store/index.js';
import { parseTdl, type ParseOptions } from '../../src/tdl/index.js';
import { testEngine, testTemplate, waitFor, waitForPhase } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function started(...args: Parameters<typeof testEngine>) {
  const t = await testEngine(...args);
  cleanups.push(() => t.cleanup());
  return t;
}

describe('the engine runs base image builds as machines', () => {
  it('builds an image through every state, records each transition before publishing it, and checksums the body', async () => {
    const { engine, leftovers } = await started();
    const seen: EngineEvent[] = [];
    engine.subscribe((e) => seen.push(e));
    const image = engine.submitBaseImage({ template: testTemplate('ok') });
    expect(image.status).toBe('NEW');
    const done = await waitFor(engine, image.id, ['COMPLETE', 'FAILED']);
    expect(done.error).toBeNull();
    expect(done.status).toBe('COMPLETE');
    expect(done.percentComplete).toBe(100);
    expect(engine.transitions(image.id).map((t) => t.to)).toEqual(['queued', 'validating', 'preparing', 'installing', 'customizing', 'snapshotting', 'complete']);
    const transitionEvents = seen.filter((e) => e.type === 'transition' && e.image.id === image.id);
    expect(transitionEvents.map((e) => e.type === 'transition' && e.transition.to)).toEqual(engine.transitions(image.id).map((t) => t.to));
    expect(seen.some((e) => e.type === 'progress')).toBe(true);
    const body = readFileSync(done.bodyPath!);
    expect(done.properties.sha256).toBe(createHash('sha256').update(body).digest('hex'));
    expect(statSync(done.bodyPath!).mode & 0o222).toBe(0);
    expect(leftovers()).toEqual([]);
  });

  it('refuses an invalid template with the TDL errors before creating anything', async () => {
    const { engine } = await started();
    expect(() => engine.submitBaseImage({ template: '<template><name>x</name></template>' })).toThrowError(
      expect.objectContaining({ code: 'template_invalid', message: expect.stringContaining('line 1, col 1: /template: missing required element <os>') }),
    );
    expect(engine.listImages()).toEqual([]);
  });

  it('fails with plugin_missing when no OS plugin builds the template, never a fake success', async () => {
    const { engine, leftovers } = await started();
    const image = engine.submitBaseImage({ template: testTemplate('12', 'Debian') });
    const done = await waitFor(engine, image.id, ['COMPLETE', 'FAILED']);
    expect(done.status).toBe('FAILED');
    expect(done.error).toMatchObject({ code: 'plugin_missing', message: expect.stringContaining('no OS plugin can build Debian 12 x86_64') });
    expect(done.bodyPath).toBeNull();
    expect(leftovers()).toEqual([]);
  });

  it('fails with the step error and undoes every started step in reverse order', async () => {
    const { engine, leftovers } = await started();
    const image = engine.submitBaseImage({ template: testTemplate('fail-customize') });
    const done = await waitFor(engine, image.id, ['FAILED', 'COMPLETE']);
    expect(done.error).toEqual({ code: 'command_failed', message: 'command "break-things" exited with 3: boom', details: { command: 'break-things', exitCode: 3, outputTail: 'boom' } });
    const log = readFileSync(engine.logPath(image.id)!, 'utf8');
    const undos = [...log.matchAll(/undo (\w+): done/g)].map((m) => m[1]);
    expect(undos).toEqual(['customize', 'install', 'prepare', 'validate']);
    expect(leftovers()).toEqual([]);
  });

  it('times out a stuck build at its deadline, kills its processes and removes its files', async () => {
    const { engine, leftovers } = await started({ timeoutSeconds: 3 });
    const image = engine.submitBaseImage({ template: testTemplate('stuck') });
    await waitForPhase(engine, image.id, 'installing');
    await new Promise((r) => setTimeout(r, 300));
    expect(processesOfBuild(image.id).length).toBeGreaterThan(0);
    const start = Date.now();
    const done = await waitFor(engine, image.id, ['FAILED', 'COMPLETE']);
    expect(Date.now() - new Date(image.created).getTime()).toBeLessThan(5000);
    expect(Date.now() - start).toBeLessThan(5000);
    expect(done.error?.code).toBe('timeout');
    expect(readFileSync(engine.logPath(image.id)!, 'utf8')).toMatch(/undo install: done/);
    expect(processesOfBuild(image.id)).toEqual([]);
    expect(leftovers()).toEqual([]);
  });

  it('enforces a per-phase limit from the configuration', async () => {
    const { engine } = await started({ phaseLimits: { installing: 1 } });
    const image = engine.submitBaseImage({ template: testTemplate('stuck') });
    const done = await waitFor(engine, image.id, ['FAILED', 'COMPLETE']);
    expect(done.error).toEqual({ code: 'timeout', message: 'the installing phase exceeded its limit of 1 s' });
  });

  it('cancels a build mid-install: CANCELLED, no process and no file left', async () => {
    const { engine, leftovers } = await started();
    const image = engine.submitBaseImage({ template: testTemplate('stuck') });
    await waitForPhase(engine, image.id, 'installing');
    engine.cancel(image.id);
    const done = await waitFor(engine, image.id, ['CANCELLED', 'FAILED', 'COMPLETE'], 5000);
    expect(done.status).toBe('CANCELLED');
    expect(done.error?.code).toBe('cancelled');
    expect(processesOfBuild(image.id)).toEqual([]);
    expect(leftovers()).toEqual([]);
    expect(() => engine.cancel(image.id)).toThrow(EngineError);
  });

  it('admits at most max_concurrent_local_sessions builds at once and queues the rest', async () => {
    const { engine } = await started({ maxConcurrentLocal: 1 });
    const a = engine.submitBaseImage({ template: testTemplate('slow') });
    const b = engine.submitBaseImage({ template: testTemplate('slow') });
    await waitForPhase(engine, a.id, 'installing');
    expect(engine.getImage(b.id)!.phase).toBe('queued');
    await waitFor(engine, b.id, ['COMPLETE']);
    const aDone = engine.transitions(a.id).find((t) => t.to === 'complete')!.at;
    const bStart = engine.transitions(b.id).find((t) => t.to === 'validating')!.at;
    expect(bStart >= aDone).toBe(true);
  });

  it('answers 503-style queue_full when the queue is full', async () => {
    const { engine } = await started({ maxConcurrentLocal: 1, maxQueued: 1 });
    engine.submitBaseImage({ template: testTemplate('stuck') });
    expect(() => engine.submitBaseImage({ template: testTemplate('stuck') })).toThrowError(expect.objectContaining({ code: 'queue_full' }));
  });

  it('builds a target from a template as a chain and fails it cleanly when no cloud plugin exists', async () => {
    const { engine } = await started();
    const target = engine.submitTargetImage({ target: 'ec2', template: testTemplate('ok') });
    expect(target.status).toBe('PENDING');
    const done = await waitFor(engine, target.id, ['FAILED', 'COMPLETE']);
    expect(engine.getImage(target.baseImageId!)!.status).toBe('COMPLETE');
    expect(done.error).toMatchObject({ code: 'plugin_missing', message: 'no cloud plugin handles the target "ec2"' });
    expect(engine.transitions(target.id).map((t) => t.to)).toEqual(['waiting_for_base', 'queued', 'adapting', 'failing', 'failed']);
  });

  it('fails a target whose base failed, naming the base', async () => {
    const { engine } = await started();
    const target = engine.submitTargetImage({ target: 'ec2', template: testTemplate('fail-customize') });
    const done = await waitFor(engine, target.id, ['FAILED', 'COMPLETE']);
    expect(done.error?.code).toBe('parent_failed');
    expect(done.error?.message).toContain('command_failed');
  });

  it('deletes an image with its body, refusing one with children unless cascade', async () => {
    const { engine } = await started();
    const base = engine.submitBaseImage({ template: testTemplate('ok') });
    const done = await waitFor(engine, base.id, ['COMPLETE']);
    const target = engine.submitTargetImage({ target: 'ec2', baseImageId: base.id });
    await waitFor(engine, target.id, ['FAILED']);
    expect(() => engine.deleteImage(base.id)).toThrowError(expect.objectContaining({ code: 'conflict' }));
    const gone = new Promise<void>((resolve) => engine.subscribe((e) => e.type === 'deleted' && e.image.id === base.id && resolve()));
    engine.deleteImage(base.id, { cascade: true });
    await gone;
    expect(engine.getImage(base.id)).toBeNull();
    expect(engine.getImage(target.id)).toBeNull();
    expect(existsSync(done.bodyPath!)).toBe(false);
  });
});

describe('recovery at start', () => {
  it('resumes an interrupted install by re-running its step, keeping the deadline', async () => {
    const t = await started({ timeoutSeconds: 120 });
    const image = t.engine.submitBaseImage({ template: testTemplate('slow') });
    await waitForPhase(t.engine, image.id, 'installing');
    await t.engine.shutdown();
    expect(processesOfBuild(image.id)).toEqual([]);
    const again = await t.restart();
    cleanups.push(() => again.shutdown());
    const done = await waitFor(again, image.id, ['COMPLETE', 'FAILED']);
    expect(done.status).toBe('COMPLETE');
    expect(done.deadline).toBe(image.deadline);
    expect(readFileSync(again.logPath(image.id)!, 'utf8')).toMatch(/daemon restarted: resuming in state installing/);
  });

  it('fails with interrupted a build that cannot resume (its plugin is gone) and undoes it', async () => {
    const t = await started();
    const image = t.engine.submitBaseImage({ template: testTemplate('stuck') });
    await waitForPhase(t.engine, image.id, 'installing');
    await t.engine.shutdown();
    const again = await t.restart({ pluginDirs: [] });
    cleanups.push(() => again.shutdown());
    const done = again.getImage(image.id)!;
    expect(done.status).toBe('FAILED');
    expect(done.error?.code).toBe('interrupted');
    expect(t.leftovers()).toEqual([]);
  });
});

describe('the template of a build', () => {
  it('is parsed once per build per process: at submission, and again only in a process that resumes it', async () => {
    const parsed: string[] = [];
    const counting = (text: string, options: ParseOptions) => {
      parsed.push(text);
      return parseTdl(text, options);
    };
    const t = await started({ timeoutSeconds: 120 }, { replace: { parseTemplate: counting } });
    const image = t.engine.submitBaseImage({ template: testTemplate('ok') });
    await waitFor(t.engine, image.id, ['COMPLETE']);
    expect(parsed).toHaveLength(1);

    const slow = t.engine.submitBaseImage({ template: testTemplate('slow') });
    await waitForPhase(t.engine, slow.id, 'installing');
    await t.engine.shutdown();
    parsed.length = 0;
    const again = await t.restart({}, { replace: { parseTemplate: counting } });
    cleanups.push(() => again.shutdown());
    await waitFor(again, slow.id, ['COMPLETE']);
    expect(parsed).toHaveLength(1);
  });
});

describe('faults of the host storage', () => {
  it('fails a build whose transition cannot be recorded with storage_full, and goes on building others', async () => {
    let failNext = false;
    const t = await started({}, {});
    await t.engine.shutdown();
    const catalog = Catalog.open(join(t.opts.storagePath, 'catalog.sqlite'));
    const record = catalog.recordTransition.bind(catalog);
    catalog.recordTransition = (...args: Parameters<Catalog['recordTransition']>) => {
      if (failNext && args[0].to === 'customizing') {
        failNext = false;
        throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      }
      return record(...args);
    };
    const engine = await t.restart({}, { replace: { catalog } });
    cleanups.push(() => engine.shutdown());
    failNext = true;
    const image = engine.submitBaseImage({ template: testTemplate('ok') });
    const done = await waitFor(engine, image.id, ['FAILED', 'COMPLETE']);
    expect(done.error).toMatchObject({ code: 'storage_full', message: expect.stringContaining('database or disk is full') });
    await new Promise((r) => setTimeout(r, 300));
    expect(processesOfBuild(image.id)).toEqual([]);
    expect(t.leftovers()).toEqual([]);
    const next = engine.submitBaseImage({ template: testTemplate('ok') });
    expect((await waitFor(engine, next.id, ['FAILED', 'COMPLETE'])).status).toBe('COMPLETE');
  });

  it('fails a build whose log cannot be written with storage_full', async () => {
    const t = await started();
    const image = t.engine.submitBaseImage({ template: testTemplate('slow') });
    await waitForPhase(t.engine, image.id, 'installing');
    // The log directory becomes a file: every append fails as on a full disk.
    rmSync(join(t.opts.storagePath, 'logs'), { recursive: true, force: true });
    writeFileSync(join(t.opts.storagePath, 'logs'), '');
    const done = await waitFor(t.engine, image.id, ['FAILED', 'COMPLETE']);
    expect(done.error?.code).toBe('storage_full');
  });
});

describe('recovery of a record it cannot handle', () => {
  it('fails that build interrupted and still starts', async () => {
    const t = await started();
    const image = t.engine.submitBaseImage({ template: testTemplate('stuck') });
    await waitForPhase(t.engine, image.id, 'installing');
    await t.engine.shutdown();
    const db = new Database(join(t.opts.storagePath, 'catalog.sqlite'));
    db.prepare('UPDATE snapshots SET json = ? WHERE image_id = ?').run('{"value": {"not": "a state"}}', image.id);
    db.close();
    const again = await t.restart();
    cleanups.push(() => again.shutdown());
    expect(again.getImage(image.id)).toMatchObject({ status: 'FAILED', error: { code: 'interrupted' } });
    const next = again.submitBaseImage({ template: testTemplate('ok') });
    expect((await waitFor(again, next.id, ['FAILED', 'COMPLETE'])).status).toBe('COMPLETE');
  });
});

describe('the build cache', () => {
  it('answers an identical template with the COMPLETE image again: a cache hit in its transitions, its body a hard link', async () => {
    const { engine } = await started();
    const first = await waitFor(engine, engine.submitBaseImage({ template: testTemplate('ok') }).id, ['COMPLETE']);
    const started2 = Date.now();
    const again = await waitFor(engine, engine.submitBaseImage({ template: testTemplate('ok') }).id, ['COMPLETE', 'FAILED']);
    expect(Date.now() - started2).toBeLessThan(2000);
    expect(again.status).toBe('COMPLETE');
    expect(engine.transitions(again.id).map((t) => [t.to, t.event])).toEqual([
      ['queued', 'xstate.init'],
      ['validating', 'ADMIT'],
      ['complete', 'cache_hit'],
    ]);
    expect(again.properties).toMatchObject({ sha256: first.properties.sha256, cache_hit_of: first.id, cache_key: first.properties.cache_key });
    expect(statSync(again.bodyPath!).ino).toBe(statSync(first.bodyPath!).ino);

    // Deleting the first keeps what the second still references.
    const gone = new Promise<void>((resolve) => engine.subscribe((e) => e.type === 'deleted' && e.image.id === first.id && resolve()));
    engine.deleteImage(first.id);
    await gone;
    expect(createHash('sha256').update(readFileSync(again.bodyPath!)).digest('hex')).toBe(first.properties.sha256);
  });

  it('builds again with parameters.rebuild, and for a changed template', async () => {
    const { engine } = await started();
    await waitFor(engine, engine.submitBaseImage({ template: testTemplate('ok') }).id, ['COMPLETE']);
    const forced = await waitFor(engine, engine.submitBaseImage({ template: testTemplate('ok'), parameters: { rebuild: true } }).id, ['COMPLETE']);
    expect(engine.transitions(forced.id).map((t) => t.to)).toContain('installing');
    const changed = await waitFor(engine, engine.submitBaseImage({ template: testTemplate('ok').replace('<name>t-ok</name>', '<name>t-ok-2</name>') }).id, ['COMPLETE']);
    expect(changed.properties.cache_hit_of).toBeUndefined();
    expect(engine.transitions(changed.id).map((t) => t.to)).toContain('installing');
  });
});

describe('one user of a storage path', () => {
  it('refuses a second engine on the same storage while the first runs, naming its pid, and lets it in after', async () => {
    const t = await started();
    const second = await t.restart().catch((e: unknown) => e);
    expect(second).toMatchObject({ code: 'storage_locked', message: expect.stringContaining(`pid ${process.pid}`) });
    await t.engine.shutdown();
    const again = await t.restart();
    cleanups.push(() => again.shutdown());
    expect(again.listImages()).toEqual([]);
  });
});
