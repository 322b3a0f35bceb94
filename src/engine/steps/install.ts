import { osStep } from './os-step.js';

/** The OS plugin installs the operating system onto the build's disk (a bootstrap or an installer in a guest). */
export const install = osStep('install', [10, 60]);
