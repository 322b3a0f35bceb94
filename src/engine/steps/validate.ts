import { baseCacheKey, rebuildAsked } from '../cache-key.js';
import type { EngineStep } from './types.js';

/**
 * Chooses the OS plugin for the template (parsed and checked at submission;
 * `plugin_missing` when none matches) and computes the build's cache key.
 * A COMPLETE base with the same key is this build already: its body is
 * taken (a hard link) and the build ends at once, a cache hit — unless
 * `parameters.rebuild` asks for a build.
 */
export const validate: EngineStep = {
  progress: [0, 2],
  async canResume() {
    return true;
  },
  async run(env) {
    await env.osPlugin();
    const image = env.image();
    const key = baseCacheKey(env.template(), env.osPluginIdentity(), image.parameters);
    env.update({ properties: { ...image.properties, cache_key: key } });
    if (rebuildAsked(image.parameters)) return;
    const hit = env.cached(key);
    if (!hit) return;
    await env.adopt(hit);
    return 'cache_hit';
  },
  async undo(env) {
    // Only a cache hit made anything: the body it linked.
    if (env.image().properties.cache_hit_of) {
      env.bodies.remove(env.id);
      env.update({ bodyPath: null });
    }
  },
};
