import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { processesOfBuild } from '../../src/engine/reaper.js';
import { EngineError } from '../../src/engine/errors.js';
import type { EngineEvent } from '../../src/engine/types.js';
import { testEngine, testTemplate, waitFor, waitForPhase } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function started(overrides = {}) {
  const t = await testEngine(overrides);
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
