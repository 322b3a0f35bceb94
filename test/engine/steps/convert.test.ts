import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { convert } from '../../../src/engine/steps/convert.js';
import { WorkerPool } from '../../../src/pool/index.js';
import { completeBase, recordingCloudPlugin } from './cloud-fakes.js';
import { stepTestEnv } from './env.js';

let pool: WorkerPool;
beforeAll(() => {
  pool = new WorkerPool({ maxThreads: 1 });
});
afterAll(async () => pool.destroy());
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function targetEnv(opts: Parameters<typeof stepTestEnv>[0] = {}) {
  const base = completeBase();
  const t = stepTestEnv({ parent: base, pool, ...opts, image: { kind: 'TargetImage', target: 'qcow2', baseImageId: base.id, ...opts.image } });
  cleanups.push(t.cleanup);
  return t;
}

const sha256 = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');

describe('the convert step', () => {
  it('has the plugin write the body, then checksums it in the pool, freezes it and records sha256, size and the conversion', async () => {
    const cloud = recordingCloudPlugin({ body: 'a target body' });
    const t = targetEnv({ cloudPlugin: cloud.plugin });
    await convert.run(t.env, new AbortController().signal);
    const body = t.env.bodies.pathFor(t.env.id);
    expect(cloud.contexts[0]!.outputPath).toBe(body);
    expect(t.image().bodyPath).toBe(body);
    expect(t.image().properties).toMatchObject({ sha256: sha256('a target body'), size: 13, format: 'qcow2', conversion: { format: 'qcow2', commands: ['qemu-img convert …'] } });
    expect(statSync(body).mode & 0o222).toBe(0);
    // The plugin's conversion takes 90 % of the step, the checksum the rest; never backwards.
    expect(t.progress).toContainEqual([45, 'Converting']);
    expect(t.progress.at(-1)).toEqual([100, 'Checksumming the target body (sha256)']);
    const percents = t.progress.map(([p]) => p);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
  });

  it('fails body_missing when the plugin leaves no body, and passes the plugin\'s failure on', async () => {
    const empty = targetEnv({ cloudPlugin: recordingCloudPlugin({ leaveNoBody: true }).plugin });
    await expect(convert.run(empty.env, new AbortController().signal)).rejects.toMatchObject({ code: 'body_missing' });
    const failing = targetEnv({ cloudPlugin: recordingCloudPlugin({ convertFails: 'qemu-img: no space left' }).plugin });
    await expect(convert.run(failing.env, new AbortController().signal)).rejects.toMatchObject({ code: 'convert_failed', message: 'qemu-img: no space left' });
    expect(existsSync(failing.env.bodies.pathFor(failing.env.id))).toBe(false);
  });

  it('resumes: a body already in place with its conversion recorded is checksummed again; one without is made again', async () => {
    const cloud = recordingCloudPlugin({ body: 'made again' });
    const recorded = targetEnv({ cloudPlugin: cloud.plugin, image: { properties: { conversion: { format: 'qcow2' } } } });
    writeFileSync(recorded.env.bodies.pathFor(recorded.env.id), 'made before the restart');
    await convert.run(recorded.env, new AbortController().signal);
    expect(recorded.image().properties.sha256).toBe(sha256('made before the restart'));

    const unrecorded = targetEnv({ cloudPlugin: cloud.plugin });
    writeFileSync(unrecorded.env.bodies.pathFor(unrecorded.env.id), 'renamed into place, report lost');
    await convert.run(unrecorded.env, new AbortController().signal);
    expect(readFileSync(unrecorded.env.bodies.pathFor(unrecorded.env.id), 'utf8')).toBe('made again');
    expect(unrecorded.image().properties.sha256).toBe(sha256('made again'));
  });

  it('undoes through the plugin and leaves no body or partial body, with or without a plugin, twice', async () => {
    const cloud = recordingCloudPlugin();
    const t = targetEnv({ cloudPlugin: cloud.plugin });
    await convert.run(t.env, new AbortController().signal);
    const body = t.env.bodies.pathFor(t.env.id);
    writeFileSync(`${body}.partial`, 'half');
    await convert.undo(t.env);
    await convert.undo(t.env);
    expect(cloud.calls).toEqual(['convert.run', 'convert.undo', 'convert.undo']);
    expect([existsSync(body), existsSync(`${body}.partial`), t.image().bodyPath]).toEqual([false, false, null]);

    const orphan = targetEnv({ cloudPlugin: null });
    const orphanBody = orphan.env.bodies.pathFor(orphan.env.id);
    writeFileSync(orphanBody, 'x');
    writeFileSync(`${orphanBody}.partial`, 'x');
    await convert.undo(orphan.env);
    expect([existsSync(orphanBody), existsSync(`${orphanBody}.partial`)]).toEqual([false, false]);
  });

  it('covers the second half of a target build and resumes after a restart', async () => {
    const t = targetEnv({ cloudPlugin: null });
    expect(convert.progress).toEqual([50, 100]);
    expect(await convert.canResume(t.env)).toBe(true);
  });
});
