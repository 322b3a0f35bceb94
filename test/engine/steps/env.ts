import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProviderPush } from '../../../src/clouds/providers/types.js';
import type { TargetContentFile } from '../../../src/clouds/target-content.js';
import type { CloudPlugin } from '../../../src/clouds/types.js';
import type { StepEnv } from '../../../src/engine/steps/index.js';
import { runProcess } from '../../../src/engine/process.js';
import { newImageRecord, type ImageRecord } from '../../../src/model/index.js';
import type { OsPlugin, StepContext } from '../../../src/os/plugin.js';
import { BodyStore } from '../../../src/store/index.js';
import { parseTdl, type Template } from '../../../src/tdl/index.js';

export const TEMPLATE = `<template><name>step-test</name><os><name>TestOS</name><version>ok</version><arch>x86_64</arch><install type="url"><url>http://mirror.example.com/</url></install></os></template>`;

/**
 * A step environment for one step's unit test: a real workdir, body store
 * and process runner in a temp directory; the record, the OS plugin and the
 * pool are the test's to give. Records what the step reported.
 */
export function stepTestEnv(
  opts: {
    plugin?: OsPlugin | null;
    image?: Partial<ImageRecord>;
    pool?: StepEnv['pool'];
    /** The image this build is made from (a target's base, a provider's target). */
    parent?: ImageRecord | null;
    cloudPlugin?: CloudPlugin | null;
    targetContent?: TargetContentFile;
    credentials?: string | null;
    providers?: (target: string) => ProviderPush;
  } = {},
) {
  const root = mkdtempSync(join(tmpdir(), 'if-step-test-'));
  const id = '3f1c2b4a-7d6e-4c5b-9a8f-0e1d2c3b4a59';
  let image: ImageRecord = newImageRecord(id, 'BaseImage', new Date(), { template: TEMPLATE, ...opts.image });
  const parsed = parseTdl(image.template ?? '');
  const template = parsed.ok ? parsed.template : (null as unknown as Template);
  const progress: [number, string][] = [];
  const logs: string[] = [];
  const bodies = new BodyStore(join(root, 'storage'));
  bodies.ensureDir();
  const workdir = join(root, 'work', `imagefactory-${id}`);
  const pluginContexts: StepContext[] = [];
  /** COMPLETE images by cache key, as the catalog would find them. */
  const cache = new Map<string, ImageRecord>();
  const adopted: string[] = [];
  const env: StepEnv = {
    id,
    kind: 'base',
    image: () => image,
    template: () => template,
    workdir,
    diskPath: join(workdir, 'disk.img'),
    bodies,
    pool: opts.pool ?? (null as never),
    log: (line) => logs.push(line),
    progress: (p, a) => progress.push([p, a]),
    update: (patch) => {
      image = { ...image, ...patch };
    },
    async osPlugin() {
      if (!opts.plugin) throw Object.assign(new Error('no OS plugin can build TestOS'), { code: 'plugin_missing' });
      return opts.plugin;
    },
    hasOsPlugin: () => !!opts.plugin,
    osPluginIdentity: () => ({ id: 'TestOS', version: '1.0' }),
    cached: (key) => cache.get(key) ?? null,
    async adopt(source) {
      adopted.push(source.id);
      image = { ...image, bodyPath: bodies.pathFor(id), properties: { ...image.properties, cache_hit_of: source.id } };
    },
    pluginContext(signal) {
      const ctx = {
        image,
        template,
        parameters: image.parameters,
        workdir,
        diskPath: env.diskPath,
        signal,
        log: env.log,
        progress: env.progress,
        run: (command: string, args: string[], options?: Parameters<StepEnv['run']>[3]) => env.run(command, args, signal, options),
        runGuest: async () => {
          throw new Error('no guests in step tests');
        },
        report: (facts: { icicle?: string; properties?: Record<string, unknown> }) => {
          image = { ...image, ...(facts.icicle !== undefined ? { icicle: facts.icicle } : {}), properties: { ...image.properties, ...facts.properties } };
        },
      } as unknown as StepContext;
      pluginContexts.push(ctx);
      return ctx;
    },
    run: (command, args, signal, options = {}) => runProcess(command, args, { ...options, buildId: `step-test-${id}`, signal, log: (l) => { logs.push(l); options.onLine?.(l); } }),
    parent() {
      if (!opts.parent) throw Object.assign(new Error('the image this build is made from no longer exists'), { code: 'parent_missing' });
      return opts.parent;
    },
    cloudPlugin() {
      if (!opts.cloudPlugin) throw Object.assign(new Error(`no cloud plugin handles the target "${image.target}"`), { code: 'plugin_missing' });
      return { plugin: opts.cloudPlugin, identity: { id: 'TestCloud', version: '1.0' } };
    },
    cloud: {
      settings: { rhevm_image_format: 'qcow2', openstack_image_format: 'raw' },
      targetContent: () => opts.targetContent ?? { path: '(none)', includes: [] },
      push: { parallelRequests: 3 },
      pushFor: async (target) => {
        if (!opts.providers) throw Object.assign(new Error(`no provider push for the target ${target}`), { code: 'not_supported' });
        return opts.providers(target);
      },
    },
    credentials: () => opts.credentials ?? null,
  };
  return { env, root, progress, logs, pluginContexts, cache, adopted, image: () => image, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** An OS plugin that records which of its steps ran and undid, in order. */
export function recordingPlugin(fail: Partial<Record<keyof OsPlugin, string>> = {}) {
  const calls: string[] = [];
  const step = (name: keyof OsPlugin) => ({
    async run(ctx: StepContext) {
      calls.push(`run:${name}:${ctx.signal.aborted ? 'aborted' : 'live'}`);
      if (fail[name]) throw Object.assign(new Error(fail[name]), { code: 'plugin_failed' });
    },
    async undo(ctx: StepContext) {
      calls.push(`undo:${name}:${ctx.signal.aborted ? 'aborted' : 'live'}`);
    },
  });
  const plugin: OsPlugin = { prepare: step('prepare'), install: step('install'), customize: step('customize') };
  return { plugin, calls };
}
