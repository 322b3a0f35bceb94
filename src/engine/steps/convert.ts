import { rm, stat } from 'node:fs/promises';
import { StepError } from '../../model/index.js';
import { partialPath } from '../../clouds/qemu-img.js';
import { cloudStepContext, cloudUndoContext, pluginOrNull } from './cloud-context.js';
import type { EngineStep } from './types.js';

const CHECKSUMMING = 'Checksumming the target body (sha256)';
/** The plugin's conversion takes this much of the step; the checksum the rest. */
const CONVERSION_SHARE = 0.9;

/**
 * The target's cloud plugin converts the adapted overlay into the target's
 * body (written beside it and renamed into place only when complete); the
 * body is then checksummed in the worker pool, frozen, and its sha256 and
 * size recorded next to the conversion the plugin reported. Repeatable: a
 * body already in place is checksummed again.
 */
export const convert: EngineStep = {
  progress: [50, 100],
  async canResume() {
    return true;
  },
  async run(env, signal) {
    const { plugin } = env.cloudPlugin();
    const ctx = cloudStepContext(env, signal);
    const report = ctx.progress;
    ctx.progress = (percent, activity) => report(percent * CONVERSION_SHARE, activity);
    // A body renamed into place by a run that stopped before its report was kept is made again: the record must say how it was made.
    if (env.bodies.exists(env.id) && !env.image().properties.conversion) env.bodies.remove(env.id);
    await plugin.convert.run(ctx);
    if (!env.bodies.exists(env.id)) throw new StepError('body_missing', `the ${ctx.target} conversion left no body at ${ctx.outputPath}`);
    const bodyPath = ctx.outputPath;
    report(CONVERSION_SHARE * 100, CHECKSUMMING);
    const sha256 = await env.pool.sha256(bodyPath, {
      signal,
      onProgress: (done, total) => report(CONVERSION_SHARE * 100 + (total ? (done / total) * (100 - CONVERSION_SHARE * 100) : 0), CHECKSUMMING),
    });
    env.bodies.freeze(env.id);
    const { size } = await stat(bodyPath);
    env.update({ bodyPath, properties: { ...env.image().properties, sha256, size } });
  },
  async undo(env) {
    const plugin = pluginOrNull(env);
    const ctx = cloudUndoContext(env);
    if (plugin) await plugin.convert.undo(ctx);
    // Whatever the plugin did, no body and no partial body of this build is left.
    await rm(partialPath(ctx.outputPath), { force: true });
    env.bodies.remove(env.id);
    env.update({ bodyPath: null });
  },
};
