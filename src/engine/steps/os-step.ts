import { mkdir } from 'node:fs/promises';
import type { OsPlugin } from '../../os/plugin.js';
import type { EngineStep } from './types.js';

/**
 * A step whose work is the OS plugin's step of the same name (prepare,
 * install, customize): the engine gives it the build's private workdir and
 * the plugin context; the plugin does the rest, and its own undo.
 */
export function osStep(name: keyof OsPlugin, progress: readonly [number, number]): EngineStep {
  return {
    progress,
    async canResume(env) {
      return env.hasOsPlugin();
    },
    async run(env, signal) {
      const plugin = await env.osPlugin();
      await mkdir(env.workdir, { recursive: true, mode: 0o700 });
      await plugin[name].run(env.pluginContext(signal));
    },
    async undo(env) {
      // Without a plugin for the template, nothing of this step can have run.
      if (!env.hasOsPlugin()) return;
      const plugin = await env.osPlugin();
      // An undo runs no long work: the plugin's tools see an already aborted signal.
      await plugin[name].undo(env.pluginContext(AbortSignal.abort()));
    },
  };
}
