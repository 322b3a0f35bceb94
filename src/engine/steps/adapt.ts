import { rebuildAsked, targetCacheKey } from '../cache-key.js';
import { cloudStepContext, cloudUndoContext, pluginOrNull } from './cloud-context.js';
import type { EngineStep } from './types.js';

/**
 * The target's cloud plugin adapts a copy-on-write overlay of the frozen
 * base (the base is only its backing file). Before that, the build's cache
 * key: the base body's sha256, the target, the cloud plugin and its
 * version, the target content and the parameters. A COMPLETE target with
 * the same key is this build already: its body is taken (a hard link) and
 * the build ends at once, a cache hit — unless `parameters.rebuild` asks
 * for a build.
 */
export const adapt: EngineStep = {
  progress: [0, 50],
  // The plugin's adapt finds an overlay it finished (its marker) or starts over.
  async canResume() {
    return true;
  },
  async run(env, signal) {
    const { plugin, identity } = env.cloudPlugin();
    const ctx = cloudStepContext(env, signal);
    const image = env.image();
    const baseSha256 = env.parent().properties.sha256;
    const key =
      typeof baseSha256 === 'string'
        ? targetCacheKey({ baseSha256, target: ctx.target, plugin: identity, content: ctx.targetContent, parameters: image.parameters })
        : null;
    env.update({ properties: { ...image.properties, base_sha256: baseSha256 ?? null, cloud_plugin: identity, ...(key ? { cache_key: key } : {}) } });
    env.log(`cloud plugin ${identity.id} ${identity.version} makes the ${ctx.target} target`);
    if (key && !rebuildAsked(image.parameters)) {
      const hit = env.cached(key);
      if (hit) {
        await env.adopt(hit);
        return 'cache_hit';
      }
    }
    await plugin.adapt.run(ctx);
  },
  async undo(env) {
    // A cache hit made nothing but the body it linked.
    if (env.image().properties.cache_hit_of) {
      env.bodies.remove(env.id);
      env.update({ bodyPath: null });
    }
    const plugin = pluginOrNull(env);
    if (plugin) await plugin.adapt.undo(cloudUndoContext(env));
  },
};
