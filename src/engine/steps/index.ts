import { WORK, type StepName } from '../../../machines/steps.js';
import type { BuildKind } from '../../model/index.js';
import { adapt } from './adapt.js';
import { convert } from './convert.js';
import { customize } from './customize.js';
import { install } from './install.js';
import { prepare } from './prepare.js';
import { register } from './register.js';
import { snapshot } from './snapshot.js';
import type { EngineStep } from './types.js';
import { upload } from './upload.js';
import { validate } from './validate.js';

export type { CloudEnv, EngineStep, StepEnv, StepOutcome } from './types.js';

/** Every step the machines name (machines/steps.ts), by name: TypeScript insists on one for each. */
export const STEPS: Record<StepName, EngineStep> = { validate, prepare, install, customize, snapshot, adapt, convert, upload, register };

/** The step a machine state runs, or null for states that run none (queued, waiting, undoing, final). */
export function stepOfState(kind: BuildKind, state: string): { name: StepName; step: EngineStep } | null {
  const work = (WORK[kind] as readonly { state: string; step: StepName }[]).find((w) => w.state === state);
  return work ? { name: work.step, step: STEPS[work.step] } : null;
}

export function stepNamed(name: string): EngineStep | null {
  return (STEPS as Record<string, EngineStep | undefined>)[name] ?? null;
}
