import { targetContentFor } from '../../clouds/target-content.js';
import type { CloudStepContext } from '../../clouds/types.js';
import { StepError, type ImageRecord } from '../../model/index.js';
import type { StepEnv } from './types.js';

/**
 * The context a cloud plugin's step gets (docs/clouds.md, "The context the
 * engine supplies"): the frozen base body from the base image's record, the
 * template, the target's parameters and content, the build's workdir, and
 * the target's body path as the output. Logging, progress, processes,
 * guests and reports go through the same services as an OS plugin's.
 */
export function cloudStepContext(env: StepEnv, signal: AbortSignal): CloudStepContext {
  const image = env.image();
  const base = frozenBase(env.parent());
  const template = env.template();
  const target = image.target ?? '';
  const os = env.pluginContext(signal);
  return {
    imageId: env.id,
    target,
    base,
    template,
    parameters: image.parameters,
    settings: env.cloud.settings,
    targetContent: targetContentFor(env.cloud.targetContent(), target, template),
    workdir: env.workdir,
    outputPath: env.bodies.pathFor(env.id),
    signal,
    log: os.log,
    progress: os.progress,
    run: os.run,
    runGuest: os.runGuest,
    pool: env.pool,
    report: os.report,
  };
}

/** The base body a target is made from: complete, with a body on disk, in a format qemu can back an overlay with. */
function frozenBase(base: ImageRecord): CloudStepContext['base'] {
  if (base.status !== 'COMPLETE' || !base.bodyPath) throw new StepError('parent_missing', `the base image ${base.id} is ${base.status} and has no body to make a target from`, { parentId: base.id });
  const format = base.properties.format;
  if (format !== 'qcow2' && format !== 'raw') throw new StepError('parent_missing', `the base image ${base.id} does not say its body's format (qcow2 or raw)`, { parentId: base.id });
  return { path: base.bodyPath, format };
}

/**
 * The context of an undo: a plugin's undo touches only the workdir and the
 * output (docs/clouds.md), so it must work even when the base image or the
 * template can no longer be read (a restored build whose base was deleted).
 * Its signal is already aborted: an undo starts no long work.
 */
export function cloudUndoContext(env: StepEnv): CloudStepContext {
  const signal = AbortSignal.abort();
  try {
    return cloudStepContext(env, signal);
  } catch {
    const unavailable = () => Promise.reject(new StepError('internal', 'an undo boots no guest'));
    return {
      imageId: env.id,
      target: env.image().target ?? '',
      base: { path: '', format: 'qcow2' },
      template: null as never,
      parameters: env.image().parameters,
      settings: env.cloud.settings,
      targetContent: null,
      workdir: env.workdir,
      outputPath: env.bodies.pathFor(env.id),
      signal,
      log: env.log,
      progress: () => undefined,
      run: (command, args, options) => env.run(command, args, signal, options),
      runGuest: unavailable,
      pool: env.pool,
      report: () => undefined,
    };
  }
}

/** The build's cloud plugin, or null when none serves its target (then nothing of it can have run). */
export function pluginOrNull(env: StepEnv) {
  try {
    return env.cloudPlugin().plugin;
  } catch {
    return null;
  }
}
