import { osStep } from './os-step.js';

/** The OS plugin customizes the installed system in a guest: repositories, packages, files, commands, the ICICLE. */
export const customize = osStep('customize', [60, 85]);
