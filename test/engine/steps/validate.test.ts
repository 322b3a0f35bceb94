import { afterEach, describe, expect, it } from 'vitest';
import { validate } from '../../../src/engine/steps/validate.js';
import { recordingPlugin, stepTestEnv } from './env.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

describe('the validate step', () => {
  it('chooses the OS plugin and runs none of its steps', async () => {
    const { plugin, calls } = recordingPlugin();
    const t = stepTestEnv({ plugin });
    cleanups.push(t.cleanup);
    await validate.run(t.env, new AbortController().signal);
    expect(calls).toEqual([]);
  });

  it('fails with plugin_missing when no plugin builds the template', async () => {
    const t = stepTestEnv({ plugin: null });
    cleanups.push(t.cleanup);
    await expect(validate.run(t.env, new AbortController().signal)).rejects.toMatchObject({ code: 'plugin_missing' });
  });

  it('covers the first 2 % of progress, resumes after a restart, and has nothing to undo without a cache hit', async () => {
    const t = stepTestEnv({ plugin: null });
    cleanups.push(t.cleanup);
    expect(validate.progress).toEqual([0, 2]);
    expect(await validate.canResume(t.env)).toBe(true);
    await validate.undo(t.env);
    await validate.undo(t.env);
  });
});

describe('the validate step and the build cache', () => {
  it('records the cache key, and takes the body of a COMPLETE image with the same key: a cache hit', async () => {
    const { plugin } = recordingPlugin();
    const first = stepTestEnv({ plugin });
    cleanups.push(first.cleanup);
    await validate.run(first.env, new AbortController().signal);
    const key = first.image().properties.cache_key as string;
    expect(key).toMatch(/^[0-9a-f]{64}$/);

    const second = stepTestEnv({ plugin });
    cleanups.push(second.cleanup);
    second.cache.set(key, { ...first.image(), id: 'an-earlier-image', status: 'COMPLETE' });
    expect(await validate.run(second.env, new AbortController().signal)).toBe('cache_hit');
    expect(second.adopted).toEqual(['an-earlier-image']);
  });

  it('builds anyway when parameters.rebuild is true, and on another template or other parameters', async () => {
    const { plugin } = recordingPlugin();
    const base = stepTestEnv({ plugin });
    cleanups.push(base.cleanup);
    await validate.run(base.env, new AbortController().signal);
    const key = base.image().properties.cache_key as string;

    const rebuild = stepTestEnv({ plugin, image: { parameters: { rebuild: true } } });
    const other = stepTestEnv({ plugin, image: { parameters: { kernel: 'generic' } } });
    const neutral = stepTestEnv({ plugin, image: { parameters: { callbacks: ['http://example.invalid/'] } } });
    cleanups.push(rebuild.cleanup, other.cleanup, neutral.cleanup);
    for (const t of [rebuild, other, neutral]) t.cache.set(key, { ...base.image(), id: 'an-earlier-image', status: 'COMPLETE' });
    expect(await validate.run(rebuild.env, new AbortController().signal)).toBeUndefined();
    expect(await validate.run(other.env, new AbortController().signal)).toBeUndefined();
    expect(other.image().properties.cache_key).not.toBe(key);
    // Callbacks say where to report, not what to build: the same image.
    expect(await validate.run(neutral.env, new AbortController().signal)).toBe('cache_hit');
  });
});
