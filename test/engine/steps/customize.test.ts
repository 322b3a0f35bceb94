import { customize } from '../../../src/engine/steps/customize.js';
import { osStepSuite } from './os-step-suite.js';

osStepSuite('customize', customize, [60, 85]);
