import { StepError } from '../../model/index.js';
import type { EngineStep } from './types.js';
import { describeResources, providerResources } from '../provider-resources.js';

/**
 * A provider's push registers the image in the same call that uploads it
 * (the upload step shows that phase in its activity), so this step checks
 * the outcome instead: the image has its `identifier_on_provider`, and the
 * resource behind it is among those recorded for DELETE. It needs no
 * credentials, so a build restored here completes.
 */
export const register: EngineStep = {
  progress: [90, 100],
  async canResume() {
    return true;
  },
  async run(env) {
    const image = env.image();
    const identifier = image.identifierOnProvider;
    if (!identifier) throw new StepError('push_incomplete', 'the push ended without an identifier on the provider');
    const resources = providerResources(image);
    if (!resources.some((r) => identifier.includes(r.id))) {
      throw new StepError('push_incomplete', `${identifier} is not among the resources the push recorded (${describeResources(resources) || 'none'})`, { identifier_on_provider: identifier });
    }
    env.progress(100, `Registered on the provider as ${identifier}`);
  },
  // The upload step's undo removes everything the push created.
  async undo() {},
};
