/**
 * The ordered work of each kind of build: machine state → step name. This is
 * the one table of steps: the engine implements each name in
 * src/engine/steps/ and finds it through its record of step names.
 */

export type { BuildKind } from '../src/model/kinds.js';
import type { BuildKind } from '../src/model/kinds.js';

export interface WorkState {
  state: string;
  step: string;
  activity: string;
}

export const WORK = {
  base: [
    { state: 'validating', step: 'validate', activity: 'Validating the template and choosing an OS plugin' },
    { state: 'preparing', step: 'prepare', activity: 'Preparing install media and disk' },
    { state: 'installing', step: 'install', activity: 'Installing the operating system' },
    { state: 'customizing', step: 'customize', activity: 'Customizing the guest: repositories, packages, files, commands' },
    { state: 'snapshotting', step: 'snapshot', activity: 'Compacting, checksumming and freezing the image' },
  ],
  target: [
    { state: 'adapting', step: 'adapt', activity: 'Adapting the base image for the target cloud' },
    { state: 'converting', step: 'convert', activity: 'Converting the image to the target format' },
  ],
  provider: [
    { state: 'uploading', step: 'upload', activity: 'Uploading the image to the provider' },
    { state: 'registering', step: 'register', activity: 'Registering the image with the provider' },
  ],
} as const satisfies Record<BuildKind, readonly WorkState[]>;

/** The name of every step of every machine; the engine must implement each (src/engine/steps/index.ts). */
export type StepName = (typeof WORK)[BuildKind][number]['step'];

/** The state a build waits in for its parent, if it has one. */
export const WAIT_STATE: Record<BuildKind, { state: string; activity: string } | null> = {
  base: null,
  target: { state: 'waiting_for_base', activity: 'Waiting for the base image' },
  provider: { state: 'waiting_for_target', activity: 'Waiting for the target image' },
};
