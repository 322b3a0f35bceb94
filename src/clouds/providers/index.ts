// The provider pushes, by the target whose image they publish. The engine's upload step calls
// `providerFor(target).push(ctx)`, its undo `cleanup`, and a provider image's DELETE `delete`.
import { ec2Provider } from './ec2/index.js';
import { ProviderError } from './errors.js';
import { libvirtProvider } from './libvirt/index.js';
import { openstackProvider } from './openstack/index.js';
import { registryProvider } from './registry/index.js';
import type { ProviderPush, PushTarget } from './types.js';

const PROVIDERS: readonly ProviderPush[] = [ec2Provider, openstackProvider, libvirtProvider, registryProvider];

export function providerFor(target: string): ProviderPush {
  const provider = PROVIDERS.find((p) => p.targets.includes(target as PushTarget));
  if (!provider) throw new ProviderError('not_supported', `no provider push for the target ${target} (there are: ${PROVIDERS.flatMap((p) => p.targets).join(', ')})`);
  return provider;
}

export { ProviderError, type ProviderErrorCode } from './errors.js';
export type { CleanupRequest, DeleteRequest, ProviderPush, ProviderResource, PushContext, PushOptions, PushProgress, PushResult, PushTarget } from './types.js';
