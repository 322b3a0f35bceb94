import { removeTree } from '../../fs/remove-tree.js';
import { osStep } from './os-step.js';
import type { EngineStep } from './types.js';

const planned = osStep('prepare', [2, 10]);

/** The OS plugin prepares install media and the disk; the build's workdir is born here and removed by its undo. */
export const prepare: EngineStep = {
  ...planned,
  async undo(env) {
    await planned.undo(env);
    await removeTree(env.workdir);
  },
};
