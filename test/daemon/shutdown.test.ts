/** The stop policy's orchestration over the engine's public API (a fake engine: the live daemon tests run the real one). */
import { afterEach, describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/errors.js';
import { stopBuilds } from '../../src/daemon/shutdown.js';
import { FakeEngine } from '../api/fake-engine.js';

const engines: FakeEngine[] = [];
afterEach(() => {
  while (engines.length) engines.pop()!.cleanup();
});

function engineWith(...statuses: ('BUILDING' | 'PENDING' | 'COMPLETE')[]) {
  const engine = new FakeEngine();
  engines.push(engine);
  const ids = statuses.map((status) => engine.addImage('BaseImage', { status, phase: status === 'COMPLETE' ? 'complete' : 'installing' }).id);
  return { engine, ids };
}

const logs: string[] = [];
const log = (fields: object, msg: string) => void logs.push(`${msg} ${JSON.stringify(fields)}`);

describe('stopping builds on SIGTERM', () => {
  it('checkpoint cancels nothing and reports the unfinished builds (the engine keeps their state)', async () => {
    const { engine, ids } = engineWith('BUILDING', 'COMPLETE', 'PENDING');
    const report = await stopBuilds(engine, 'checkpoint', 1000, log);
    expect(report.unfinished.map((b) => b.id)).toEqual([ids[0], ids[2]]);
    expect(report).toMatchObject({ final: [], timedOut: false });
    expect(engine.calls.filter((c) => c.method === 'cancel')).toEqual([]);
  });

  it('cancel cancels every unfinished build and waits until each is final', async () => {
    const { engine, ids } = engineWith('BUILDING', 'COMPLETE', 'PENDING');
    setTimeout(() => engine.transition(ids[0]!, 'cancelled', { status: 'CANCELLED' }), 50);
    setTimeout(() => engine.transition(ids[2]!, 'cancelled', { status: 'CANCELLED' }), 100);
    const started = Date.now();
    const report = await stopBuilds(engine, 'cancel', 5000, log);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(engine.calls.filter((c) => c.method === 'cancel').map((c) => c.args[0])).toEqual([ids[0], ids[2]]);
    expect(report.final).toEqual([
      { id: ids[0], status: 'CANCELLED' },
      { id: ids[2], status: 'CANCELLED' },
    ]);
    expect(report.timedOut).toBe(false);
    expect(engine.listenerCount()).toBe(0);
  });

  it('cancel stops waiting at the time limit, leaving the rest to the checkpoint', async () => {
    const { engine, ids } = engineWith('BUILDING', 'BUILDING');
    setTimeout(() => engine.transition(ids[0]!, 'cancelled', { status: 'CANCELLED' }), 20);
    const started = Date.now();
    const report = await stopBuilds(engine, 'cancel', 300, log);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(report.final).toEqual([{ id: ids[0], status: 'CANCELLED' }]);
    expect(report.timedOut).toBe(true);
    expect(engine.listenerCount()).toBe(0);
  });

  it('a build that cannot be cancelled (it ended meanwhile) does not stop the others', async () => {
    const { engine, ids } = engineWith('BUILDING', 'BUILDING');
    let first = true;
    engine.failOn('cancel', () => {
      if (first) {
        first = false;
        engine.heal('cancel');
        engine.transition(ids[0]!, 'complete', { status: 'COMPLETE' });
      }
      return new EngineError('conflict', 'already final');
    });
    setTimeout(() => engine.transition(ids[1]!, 'cancelled', { status: 'CANCELLED' }), 30);
    const report = await stopBuilds(engine, 'cancel', 2000, log);
    expect(report.final.map((f) => f.status).sort()).toEqual(['CANCELLED', 'COMPLETE']);
    expect(logs.some((l) => l.startsWith('shutdown: build not cancelled'))).toBe(true);
  });
});
