import { existsSync, statSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineStep } from '../../../src/engine/steps/index.js';
import { recordingPlugin, stepTestEnv } from './env.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

/** What a step that hands its work to the OS plugin's step of the same name does. */
export function osStepSuite(name: 'install' | 'customize', step: EngineStep, range: readonly [number, number]): void {
describe(`the ${name} step`, () => {
  it("runs the OS plugin's step in the build's private workdir, with the live signal", async () => {
    const { plugin, calls } = recordingPlugin();
    const t = stepTestEnv({ plugin });
    cleanups.push(t.cleanup);
    await step.run(t.env, new AbortController().signal);
    expect(calls).toEqual([`run:${name}:live`]);
    expect(statSync(t.env.workdir).mode & 0o777).toBe(0o700);
  });

  it("passes the plugin's failure on as it is", async () => {
    const { plugin } = recordingPlugin({ [name]: 'it broke' });
    const t = stepTestEnv({ plugin });
    cleanups.push(t.cleanup);
    await expect(step.run(t.env, new AbortController().signal)).rejects.toMatchObject({ code: 'plugin_failed', message: 'it broke' });
  });

  it("undoes through the plugin's undo with an aborted signal, twice safely, and not at all without a plugin", async () => {
    const { plugin, calls } = recordingPlugin();
    const t = stepTestEnv({ plugin });
    cleanups.push(t.cleanup);
    await step.undo(t.env);
    await step.undo(t.env);
    expect(calls).toEqual([`undo:${name}:aborted`, `undo:${name}:aborted`]);
    const none = stepTestEnv({ plugin: null });
    cleanups.push(none.cleanup);
    await step.undo(none.env);
    expect(existsSync(none.env.workdir)).toBe(false);
  });

  it('resumes after a restart only while a plugin builds the template, and covers its range of progress', async () => {
    const t = stepTestEnv({ plugin: recordingPlugin().plugin });
    const none = stepTestEnv({ plugin: null });
    cleanups.push(t.cleanup, none.cleanup);
    expect(await step.canResume(t.env)).toBe(true);
    expect(await step.canResume(none.env)).toBe(false);
    expect(step.progress).toEqual(range);
  });
});
}
