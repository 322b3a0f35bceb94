import { existsSync } from 'node:fs';
import { link, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { mergeTargetContent, type TargetContent } from '../clouds/target-content.js';
import type { CloudPlugin } from '../clouds/types.js';
import type { ImageRecord } from '../model/index.js';
import { StepError } from '../model/index.js';
import type { OsPlugin, StepContext } from '../os/plugin.js';
import { formatTdlError, type Template } from '../tdl/index.js';
import type { Build } from './build.js';
import type { EngineDeps } from './deps.js';
import type { GuestRunner } from './guests.js';
import { runProcess } from './process.js';
import { workdirFor } from './reaper.js';
import type { EngineStep, StepEnv } from './steps/index.js';
import { parentOf } from './submission.js';
import { targetContentFile } from './target-content.js';

export interface StepEnvServices {
  deps: EngineDeps;
  guests: GuestRunner;
  /** Tells listeners of a progress change already written to the catalog. */
  published(image: ImageRecord): void;
}

/** What a body's record says about the body itself, taken with it by a cache hit. */
const BODY_FACTS = ['sha256', 'size', 'format', 'disk_format', 'container_format', 'virtual_size', 'conversion'];

/** The template of a build, parsed once for it in this process and kept with it. */
export function templateOf(build: Build, image: ImageRecord, deps: EngineDeps): Template {
  if (build.template) return build.template;
  // A build restored after a restart was checked at submission: the root-password rule applied then.
  const result = deps.parseTemplate(image.template ?? '', {});
  if (!result.ok) throw new StepError('template_invalid', result.errors.map(formatTdlError).join('\n'), { errors: result.errors });
  // A base built for a target from a template keeps the target content it was given, merged again the same way.
  const merged = image.properties.target_content as TargetContent | undefined;
  build.template = merged ? mergeTargetContent(result.template, merged) : result.template;
  return build.template;
}

/** The OS plugin entry for a template, or the `plugin_missing` error naming what is loaded. */
function findOsPlugin(deps: EngineDeps, template: Template) {
  const { name, version, arch } = template.os;
  const found = deps.registry.findOs(name, version, arch);
  if (found) return found;
  const available = deps.registry.list().filter((p) => p.info.type === 'os' && !p.error).map((p) => p.id);
  throw new StepError(
    'plugin_missing',
    `no OS plugin can build ${name} ${version} ${arch}` + (available.length ? ` (loaded OS plugins: ${available.join(', ')})` : ' (no OS plugin is loaded)'),
    { os: name, version, arch },
  );
}

/** What a step of `build` works with; `step` gives the progress range. */
export function stepEnv(build: Build, step: EngineStep, services: StepEnvServices): StepEnv {
  const { deps, guests } = services;
  const id = build.id;
  const workdir = workdirFor(deps.settings.workRoot, id);
  const current = (): ImageRecord => {
    const found = deps.catalog.getImage(id);
    if (!found) throw new StepError('image_missing', `image ${id} is no longer in the catalog`);
    return found;
  };
  const image = current;
  const template = () => templateOf(build, image(), deps);
  const log = (line: string) => deps.logs.write(id, line);
  const [low, high] = step.progress;

  const env: StepEnv = {
    id,
    kind: build.kind,
    image,
    template,
    workdir,
    diskPath: join(workdir, 'disk.img'),
    bodies: deps.bodies,
    pool: deps.pool,
    log,
    progress(percent, activity) {
      const current = deps.catalog.getImage(id);
      if (!current) return;
      const scaled = Math.floor(low + ((high - low) * Math.min(100, Math.max(0, percent))) / 100);
      if (scaled <= current.percentComplete && activity === current.activity) return;
      services.published(deps.catalog.updateImage(id, { percentComplete: Math.max(scaled, current.percentComplete), activity }));
    },
    update(patch) {
      deps.catalog.updateImage(id, patch);
    },
    async osPlugin(): Promise<OsPlugin> {
      if (build.osPlugin) return build.osPlugin;
      const t = template();
      const found = findOsPlugin(deps, t);
      build.osPlugin = found.plugin;
      log(`OS plugin ${found.entry.id} builds ${t.os.name} ${t.os.version} ${t.os.arch}`);
      return found.plugin;
    },
    osPluginIdentity() {
      const found = findOsPlugin(deps, template());
      return { id: found.entry.id, version: found.entry.declared?.version ?? String(found.entry.info.version ?? '') };
    },
    cached(key) {
      const found = deps.catalog.findCached(current().kind, key);
      return found && found.id !== id && found.bodyPath && existsSync(found.bodyPath) ? found : null;
    },
    async adopt(source) {
      const bodyPath = deps.bodies.pathFor(id);
      await rm(bodyPath, { force: true });
      await link(source.bodyPath!, bodyPath);
      const facts = Object.fromEntries(BODY_FACTS.filter((k) => source.properties[k] !== undefined).map((k) => [k, source.properties[k]]));
      deps.catalog.updateImage(id, {
        bodyPath,
        icicle: source.icicle,
        properties: { ...current().properties, ...facts, cache_hit_of: source.id },
      });
      log(`cache hit: the same build as image ${source.id}; its body is this image's too (hard link, not a copy)`);
    },
    hasOsPlugin() {
      try {
        return build.osPlugin !== null || findOsPlugin(deps, template()) !== null;
      } catch {
        return false;
      }
    },
    parent() {
      const parentId = parentOf(image());
      const found = parentId ? deps.catalog.getImage(parentId) : null;
      if (!found) throw new StepError('parent_missing', `the image this build is made from (${parentId ?? 'none'}) no longer exists`);
      return found;
    },
    cloudPlugin() {
      const target = image().target ?? '';
      const found = deps.registry.findCloud(target);
      if (!found) throw new StepError('plugin_missing', `no cloud plugin handles the target "${target}"`, { target });
      return { plugin: found.plugin as CloudPlugin, identity: { id: found.entry.id, version: found.entry.declared?.version ?? String(found.entry.info.version ?? '') } };
    },
    cloud: {
      settings: deps.settings.cloud,
      targetContent: () => targetContentFile(deps.settings.targetContentPath),
      push: deps.settings.push,
      pushFor: (target) => deps.providers.load(target),
    },
    credentials: () => build.credentials,
    run(command, args, signal, { onLine, ...options } = {}) {
      return runProcess(command, args, {
        ...options,
        buildId: id,
        signal,
        log: (line) => {
          log(`${command}: ${line}`);
          onLine?.(line);
        },
      });
    },
    pluginContext(signal): StepContext {
      const current = image();
      return {
        image: current,
        template: template(),
        parameters: current.parameters,
        workdir,
        diskPath: env.diskPath,
        signal,
        log,
        progress: env.progress,
        run: (command, args, options) => env.run(command, args, signal, options),
        runGuest: (spec) => guests.run(id, spec, { signal, deadline: image().deadline ?? Number.MAX_SAFE_INTEGER, log }),
        media: deps.media,
        report: (facts) => {
          const now = image();
          deps.catalog.updateImage(id, {
            ...(facts.icicle !== undefined ? { icicle: facts.icicle } : {}),
            ...(facts.properties ? { properties: { ...now.properties, ...facts.properties } } : {}),
          });
        },
      };
    },
  };
  return env;
}
