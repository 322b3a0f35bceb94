import { afterEach, describe, expect, it } from 'vitest';
import { parseTargetContent } from '../../../src/clouds/target-content.js';
import { targetCacheKey } from '../../../src/engine/cache-key.js';
import { adapt } from '../../../src/engine/steps/adapt.js';
import { completeBase, recordingCloudPlugin } from './cloud-fakes.js';
import { stepTestEnv } from './env.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

const CONTENT = parseTargetContent(
  `<template_includes>
     <include target="qcow2"><packages><package name="anything"/></packages></include>
     <include target="qcow2" os="TestOS"><packages><package name="cloud-init"/></packages></include>
   </template_includes>`,
);

function targetEnv(opts: Parameters<typeof stepTestEnv>[0] = {}) {
  const base = completeBase();
  const t = stepTestEnv({ parent: base, targetContent: CONTENT, ...opts, image: { kind: 'TargetImage', target: 'qcow2', baseImageId: base.id, parameters: { vsphere_vmdk_format: 'streaming' }, ...opts.image } });
  cleanups.push(t.cleanup);
  return { ...t, base };
}

describe('the adapt step', () => {
  it('gives the cloud plugin the context docs/clouds.md describes, from the base record and the configuration', async () => {
    const cloud = recordingCloudPlugin();
    const t = targetEnv({ cloudPlugin: cloud.plugin });
    const signal = new AbortController().signal;
    expect(await adapt.run(t.env, signal)).toBeUndefined();
    expect(cloud.calls).toEqual(['adapt.run']);
    const ctx = cloud.contexts[0]!;
    expect(ctx).toMatchObject({
      imageId: t.env.id,
      target: 'qcow2',
      base: { path: t.base.bodyPath, format: 'qcow2' },
      parameters: { vsphere_vmdk_format: 'streaming' },
      settings: { rhevm_image_format: 'qcow2', openstack_image_format: 'raw' },
      // The most specific include of the target content: target + os.
      targetContent: { packages: ['cloud-init'], repositories: [] },
      workdir: t.env.workdir,
      outputPath: t.env.bodies.pathFor(t.env.id),
      signal,
    });
    expect(ctx.template.os.name).toBe('TestOS');
    ctx.report({ properties: { extra: 1 } });
    expect(t.image().properties).toMatchObject({ adaptation: { booted: false }, extra: 1, base_sha256: 'b'.repeat(64), cloud_plugin: { id: 'TestCloud', version: '1.0' } });
  });

  it('records the target cache key: the base body, the target, the plugin and version, the content and the parameters', async () => {
    const t = targetEnv({ cloudPlugin: recordingCloudPlugin().plugin });
    await adapt.run(t.env, new AbortController().signal);
    expect(t.image().properties.cache_key).toBe(
      targetCacheKey({ baseSha256: 'b'.repeat(64), target: 'qcow2', plugin: { id: 'TestCloud', version: '1.0' }, content: { packages: ['cloud-init'], repositories: [] }, parameters: { vsphere_vmdk_format: 'streaming' } }),
    );
  });

  it('takes the body of a COMPLETE target with the same key (a cache hit) and adapts nothing; rebuild=true builds', async () => {
    const first = targetEnv({ cloudPlugin: recordingCloudPlugin().plugin });
    await adapt.run(first.env, new AbortController().signal);
    const key = first.image().properties.cache_key as string;

    const cloud = recordingCloudPlugin();
    const hit = targetEnv({ cloudPlugin: cloud.plugin });
    hit.cache.set(key, { ...first.image(), id: 'an-earlier-target', status: 'COMPLETE' });
    expect(await adapt.run(hit.env, new AbortController().signal)).toBe('cache_hit');
    expect(hit.adopted).toEqual(['an-earlier-target']);
    expect(cloud.calls).toEqual([]);

    const rebuild = targetEnv({ cloudPlugin: cloud.plugin, image: { parameters: { vsphere_vmdk_format: 'streaming', rebuild: true } } });
    rebuild.cache.set(key, { ...first.image(), id: 'an-earlier-target', status: 'COMPLETE' });
    expect(await adapt.run(rebuild.env, new AbortController().signal)).toBeUndefined();
    expect(rebuild.adopted).toEqual([]);
    expect(cloud.calls).toEqual(['adapt.run']);
  });

  it('fails plugin_missing naming the target when no cloud plugin serves it, and parent_missing for a base without a body', async () => {
    const none = targetEnv({ cloudPlugin: null });
    await expect(adapt.run(none.env, new AbortController().signal)).rejects.toMatchObject({ code: 'plugin_missing', message: 'no cloud plugin handles the target "qcow2"' });
    const failedBase = targetEnv({ cloudPlugin: recordingCloudPlugin().plugin, parent: completeBase({ status: 'FAILED', bodyPath: null }) });
    await expect(adapt.run(failedBase.env, new AbortController().signal)).rejects.toMatchObject({ code: 'parent_missing' });
  });

  it('undoes through the plugin with an aborted signal, even when the base is gone, and safely twice', async () => {
    const cloud = recordingCloudPlugin();
    const t = targetEnv({ cloudPlugin: cloud.plugin });
    await adapt.run(t.env, new AbortController().signal);
    const gone = stepTestEnv({ cloudPlugin: cloud.plugin, parent: null, image: { kind: 'TargetImage', target: 'qcow2' } });
    cleanups.push(gone.cleanup);
    await adapt.undo(gone.env);
    await adapt.undo(t.env);
    await adapt.undo(t.env);
    expect(cloud.calls).toEqual(['adapt.run', 'adapt.undo', 'adapt.undo', 'adapt.undo']);
    expect(cloud.contexts.slice(1).every((c) => c.signal.aborted)).toBe(true);
    expect(cloud.contexts[1]!.workdir).toBe(gone.env.workdir);
    // Without a plugin nothing of it ran: nothing to undo.
    await adapt.undo(targetEnv({ cloudPlugin: null }).env);
  });

  it('covers the first half of a target build and resumes after a restart', async () => {
    const t = targetEnv({ cloudPlugin: null });
    expect(adapt.progress).toEqual([0, 50]);
    expect(await adapt.canResume(t.env)).toBe(true);
  });
});
