/** The ordered work of each kind of build: machine state → step name (the engine implements the steps). */

export type BuildKind = 'base' | 'target' | 'provider';

export interface WorkState {
  state: string;
  step: string;
  activity: string;
}

export const WORK: Record<BuildKind, readonly WorkState[]> = {
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
};

/** The state a build waits in for its parent, if it has one. */
export const WAIT_STATE: Record<BuildKind, { state: string; activity: string } | null> = {
  base: null,
  target: { state: 'waiting_for_base', activity: 'Waiting for the base image' },
  provider: { state: 'waiting_for_target', activity: 'Waiting for the target image' },
};
