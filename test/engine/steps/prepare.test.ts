import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { prepare } from '../../../src/engine/steps/prepare.js';
import { recordingPlugin, stepTestEnv } from './env.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

describe('the prepare step', () => {
  it("creates the build's workdir and runs the plugin's prepare in it", async () => {
    const { plugin, calls } = recordingPlugin();
    const t = stepTestEnv({ plugin });
    cleanups.push(t.cleanup);
    await prepare.run(t.env, new AbortController().signal);
    expect(calls).toEqual(['run:prepare:live']);
    expect(existsSync(t.env.workdir)).toBe(true);
    expect(prepare.progress).toEqual([2, 10]);
  });

  it("undoes the plugin's prepare, then removes the whole workdir; twice is safe", async () => {
    const { plugin, calls } = recordingPlugin();
    const t = stepTestEnv({ plugin });
    cleanups.push(t.cleanup);
    await mkdir(join(t.env.workdir, 'tree/etc'), { recursive: true });
    await writeFile(join(t.env.workdir, 'tree/etc/hostname'), 'x');
    await prepare.undo(t.env);
    await prepare.undo(t.env);
    expect(calls).toEqual(['undo:prepare:aborted', 'undo:prepare:aborted']);
    expect(existsSync(t.env.workdir)).toBe(false);
  });

  it('removes the workdir on undo even when no plugin builds the template', async () => {
    const t = stepTestEnv({ plugin: null });
    cleanups.push(t.cleanup);
    await mkdir(t.env.workdir, { recursive: true });
    await prepare.undo(t.env);
    expect(existsSync(t.env.workdir)).toBe(false);
  });
});
