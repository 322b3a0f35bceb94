import { install } from '../../../src/engine/steps/install.js';
import { osStepSuite } from './os-step-suite.js';

osStepSuite('install', install, [10, 60]);
