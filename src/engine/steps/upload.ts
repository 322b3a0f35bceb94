import type { ProviderResource, PushProgress, PushTarget } from '../../clouds/providers/types.js';
import { StepError } from '../../model/index.js';
import { describeResources, providerResources } from '../provider-resources.js';
import type { EngineStep, StepEnv } from './types.js';

/** How often a push's progress may be written to the catalog (a push reports after every batch of blocks). */
const PROGRESS_EVERY_MS = 1000;

/**
 * Publishes the target image on the provider: the provider's push uploads
 * and registers in one call (an EC2 push sends the EBS snapshot, then
 * registers the AMI), so this step runs all of it and shows the push's
 * phase in the activity; `register` then checks what it recorded. Each
 * resource the push creates is written to the record as soon as it exists
 * (`properties.provider_resources`), so a failure, a cancel or a restart
 * knows what to remove. The credentials are the build's, in memory only:
 * a restored build cannot go on (`credentials_lost`).
 */
export const upload: EngineStep = {
  progress: [0, 90],
  needsCredentials: true,
  async canResume() {
    return false;
  },
  async run(env, signal) {
    const image = env.image();
    const credentials = env.credentials();
    if (credentials === null) throw new StepError('credentials_lost', 'the provider credentials are gone (they are held in memory only, for the build that needs them)');
    const target = env.parent();
    if (target.status !== 'COMPLETE' || !target.bodyPath) throw new StepError('parent_missing', `the target image ${target.id} is ${target.status} and has no body to push`, { parentId: target.id });
    const push = await env.cloud.pushFor(image.target ?? '');
    const template = env.template();
    const result = await push.push({
      imageId: env.id,
      target: image.target as PushTarget,
      file: target.bodyPath,
      templateName: template.name,
      arch: template.os.arch,
      provider: image.provider ?? '',
      credentials,
      parameters: { ...target.parameters, ...image.parameters },
      signal,
      log: env.log,
      progress: throttledProgress(env),
      record: (resource) => recordResource(env, resource),
      pool: env.pool,
      options: env.cloud.push,
    });
    env.update({
      identifierOnProvider: result.identifierOnProvider,
      providerAccountIdentifier: result.providerAccountIdentifier ?? null,
      properties: { ...env.image().properties, provider_resources: result.resources, push: result.facts },
    });
    env.log(`published on the provider as ${result.identifierOnProvider}`);
  },
  async undo(env) {
    const image = env.image();
    const resources = providerResources(image);
    if (!resources.length) return;
    const credentials = env.credentials();
    if (credentials === null) {
      throw new StepError('credentials_lost', `${describeResources(resources)} cannot be removed from the provider without its credentials, which are gone`, { left_on_provider: resources });
    }
    const push = await env.cloud.pushFor(image.target ?? '');
    await push.cleanup({ target: image.target as PushTarget, provider: image.provider ?? '', credentials, resources, log: env.log, options: env.cloud.push });
    env.update({ identifierOnProvider: null, properties: { ...env.image().properties, provider_resources: [], removed_from_provider: resources } });
    env.log(`removed from the provider: ${describeResources(resources)}`);
  },
};

/** Persisted at once: a crash a moment later must still know the resource exists. */
function recordResource(env: StepEnv, resource: ProviderResource): void {
  const image = env.image();
  const known = providerResources(image);
  if (known.some((r) => r.kind === resource.kind && r.id === resource.id)) return;
  env.update({ properties: { ...image.properties, provider_resources: [...known, { ...resource }] } });
  env.log(`created on the provider: ${describeResources([resource])}`);
}

/** The push's progress as the step's percent, written at most once a second unless its phase changes or it is done. */
function throttledProgress(env: StepEnv): (progress: PushProgress) => void {
  let lastAt = 0;
  let lastPhase = '';
  return (p) => {
    const now = Date.now();
    if (p.phase === lastPhase && p.fraction < 1 && now - lastAt < PROGRESS_EVERY_MS) return;
    lastAt = now;
    lastPhase = p.phase;
    env.progress(p.fraction * 100, p.activity);
  };
}
