import { describe, expect, it } from 'vitest';
import { getShortestPaths } from 'xstate/graph';
import { createActor } from 'xstate';
import { MACHINES, toBuildError } from '../../machines/build.machine.js';
import { WAIT_STATE, WORK, type BuildKind } from '../../machines/steps.js';
import { harness } from './harness.js';

const KINDS: BuildKind[] = ['base', 'target', 'provider'];
const EVENTS = [
  { type: 'ADMIT' },
  { type: 'CANCEL' },
  { type: 'TIMEOUT', scope: 'build' },
  { type: 'xstate.done.actor.parent' },
  { type: 'xstate.error.actor.parent', error: { code: 'parent_failed', message: 'the parent failed' } },
  { type: 'xstate.done.actor.step' },
  { type: 'xstate.error.actor.step', error: { code: 'step_failed', message: 'the step failed' } },
  { type: 'xstate.done.actor.compensate' },
];
const input = { imageId: 'img-1', deadline: Date.now() + 3_600_000, parentId: 'parent-1' };

function shortestPaths(kind: BuildKind) {
  return getShortestPaths(MACHINES[kind] as never, { events: EVENTS as never, input } as never) as unknown as {
    state: { value: string };
    steps: { event: { type: string }; state: { value: string } }[];
  }[];
}

describe.each(KINDS)('the %s image machine', (kind) => {
  const paths = shortestPaths(kind);
  const work = WORK[kind].map((w) => w.state);

  it('reaches complete, failed and cancelled, and every working state', () => {
    const reached = new Set(paths.map((p) => p.state.value));
    for (const s of ['complete', 'failed', 'cancelled', 'failing', 'cancelling', 'queued', ...work]) expect(reached).toContain(s);
    if (WAIT_STATE[kind]) expect(reached).toContain(WAIT_STATE[kind]!.state);
  });

  it('can be cancelled from every non-final state except while already undoing', () => {
    for (const state of [...(WAIT_STATE[kind] ? [WAIT_STATE[kind]!.state] : []), 'queued', ...work]) {
      expect(MACHINES[kind].config.states![state]!.on).toHaveProperty('CANCEL');
    }
  });

  it.each(paths.map((p) => [p.steps.map((s) => s.event.type).join(' > '), p] as const))('follows the shortest path %s with live actors', async (_name, path) => {
    const h = harness(kind);
    for (const step of path.steps.slice(1)) {
      const t = step.event.type;
      if (t === 'ADMIT' || t === 'CANCEL') await h.send(t);
      else if (t === 'TIMEOUT') await h.fireTimer();
      else if (t === 'xstate.done.actor.step') await h.done('step');
      else if (t === 'xstate.error.actor.step') await h.fail('step', { code: 'step_failed', message: 'the step failed' });
      else if (t === 'xstate.done.actor.parent') await h.done('parent');
      else if (t === 'xstate.error.actor.parent') await h.fail('parent', { code: 'parent_failed', message: 'the parent failed' });
      else if (t === 'xstate.done.actor.compensate') await h.done('compensate');
      expect(h.state()).toBe(step.state.value);
    }
    expect(h.state()).toBe(path.state.value);
    h.actor.stop();
  });
});

describe('undo, errors and timeouts', () => {
  it('runs every base step in order and completes', async () => {
    const h = harness('base');
    await h.send('ADMIT');
    for (let i = 0; i < 5; i++) await h.done('step');
    expect(h.state()).toBe('complete');
    expect(h.log).toEqual(['run:validate', 'run:prepare', 'run:install', 'run:customize', 'run:snapshot']);
    expect(h.actor.getSnapshot().status).toBe('done');
  });

  it('undoes every started step in reverse order when a step fails, keeping the typed error', async () => {
    const h = harness('base');
    await h.send('ADMIT');
    await h.done('step');
    await h.done('step');
    await h.fail('step', { code: 'install_stalled', message: 'no disk activity for 30 s' });
    expect(h.state()).toBe('failing');
    expect(h.log.at(-1)).toBe('compensate:install,prepare,validate');
    await h.done('compensate');
    expect(h.state()).toBe('failed');
    expect(h.context().error).toEqual({ code: 'install_stalled', message: 'no disk activity for 30 s' });
  });

  it('aborts the running step and undoes on cancel, ending cancelled', async () => {
    const h = harness('base');
    await h.send('ADMIT');
    await h.done('step');
    await h.send('CANCEL');
    expect(h.log).toEqual(['run:validate', 'run:prepare', 'abort:prepare', 'compensate:prepare,validate']);
    await h.done('compensate');
    expect(h.state()).toBe('cancelled');
    expect(h.context().error?.code).toBe('cancelled');
  });

  it('still ends failed when an undo itself fails', async () => {
    const h = harness('target');
    await h.done('parent');
    await h.send('ADMIT');
    await h.fail('step', new Error('disk full'));
    expect(h.context().error).toEqual({ code: 'internal', message: 'disk full' });
    const d = h.log.at(-1);
    expect(d).toBe('compensate:adapt');
  });

  it('fails with code timeout at the build deadline, naming it', async () => {
    const deadline = Date.now() + 60_000;
    const h = harness('base', { deadline });
    await h.send('ADMIT');
    expect(h.timers.filter((t) => t.active).map((t) => t.input)).toEqual([{ at: deadline, scope: 'build' }]);
    await h.fireTimer();
    expect(h.state()).toBe('failing');
    expect(h.log).toContain('abort:validate');
    expect(h.context().error).toEqual({ code: 'timeout', message: `the build exceeded its deadline of ${new Date(deadline).toISOString()}` });
  });

  it('arms the phase limit when it comes before the build deadline', async () => {
    const h = harness('base', { phaseLimits: { installing: 30 } });
    await h.send('ADMIT');
    await h.done('step');
    await h.done('step');
    const timer = h.timers.filter((t) => t.active).at(-1)!;
    expect(timer.input.scope).toBe('phase');
    expect(timer.input.at - h.context().phaseStarted!).toBe(30_000);
    await h.fireTimer();
    expect(h.context().error).toEqual({ code: 'timeout', message: 'the installing phase exceeded its limit of 30 s' });
  });

  it('fails a target whose base failed, without admitting it', async () => {
    const h = harness('target');
    expect(h.state()).toBe('waiting_for_base');
    await h.fail('parent', { code: 'parent_failed', message: 'base image 123 failed: install_stalled' });
    expect(h.state()).toBe('failing');
    expect(h.log.at(-1)).toBe('compensate:');
  });

  it('turns anything thrown into a typed error', () => {
    expect(toBuildError({ code: 'x', message: 'y', details: { a: 1 } })).toEqual({ code: 'x', message: 'y', details: { a: 1 } });
    expect(toBuildError('boom')).toEqual({ code: 'internal', message: 'boom' });
  });
});

describe('restore after restart', () => {
  it('re-runs the step it was in and keeps the absolute deadline', async () => {
    const deadline = Date.now() + 100_000;
    const first = harness('base', { deadline });
    await first.send('ADMIT');
    await first.done('step');
    await first.done('step');
    const persisted = first.actor.getPersistedSnapshot();
    first.actor.stop();
    const json = JSON.parse(JSON.stringify(persisted));

    const second = harness('base', { snapshot: json, deadline: 1 });
    expect(second.state()).toBe('installing');
    expect(second.log).toEqual(['run:install']);
    expect(second.context().deadline).toBe(deadline);
    expect(second.context().steps).toEqual(['validate', 'prepare', 'install']);
    expect(second.timers.filter((t) => t.active).map((t) => t.input)).toEqual([{ at: deadline, scope: 'build' }]);
    for (let i = 0; i < 3; i++) await second.done('step');
    expect(second.state()).toBe('complete');
    expect(second.log).toEqual(['run:install', 'run:customize', 'run:snapshot']);
  });

  it('exposes status and activity as state meta for every state', () => {
    for (const kind of KINDS) {
      const actor = createActor(MACHINES[kind], { input });
      for (const [name, node] of Object.entries(MACHINES[kind].config.states!)) {
        expect(node.meta, `${kind}.${name}`).toMatchObject({ status: expect.any(String), activity: expect.any(String) });
      }
      actor.stop();
    }
  });
});

describe('an undo that fails', () => {
  it.each([
    ['a failed step', async (h: ReturnType<typeof harness>) => h.fail('step', { code: 'step_failed', message: 'the step failed' }), 'step_failed'],
    ['a cancel', async (h: ReturnType<typeof harness>) => h.send('CANCEL'), 'cancelled'],
  ])('after %s ends the build failed with undo_failed, keeping what caused the undo', async (_name, stop, cause) => {
    const h = harness('base');
    await h.send('ADMIT');
    await stop(h);
    await h.fail('compensate', { code: 'undo_failed', message: 'left behind: /w/tree (mounted)', details: { left: ['/w/tree'] } });
    expect(h.state()).toBe('failed');
    expect(h.context().error).toEqual({ code: 'undo_failed', message: 'left behind: /w/tree (mounted)', details: { left: ['/w/tree'], cause: expect.objectContaining({ code: cause }) } });
    h.actor.stop();
  });
});

describe('a cache hit', () => {
  it.each(KINDS)('in the first working state of a %s build ends it complete at once, with nothing to undo', async (kind) => {
    const h = harness(kind);
    if (WAIT_STATE[kind]) await h.done('parent');
    await h.send('ADMIT');
    expect(h.state()).toBe(WORK[kind][0]!.state);
    await h.hit();
    expect(h.state()).toBe('complete');
    expect(h.context().error).toBeNull();
    expect(h.log.filter((l) => l.startsWith('compensate'))).toEqual([]);
    h.actor.stop();
  });
});
