import type { ProviderResource } from '../clouds/providers/types.js';
import type { ImageRecord } from '../model/index.js';

/** What a provider image's record says its push created on the provider (`properties.provider_resources`). */
export function providerResources(image: ImageRecord): ProviderResource[] {
  const listed = image.properties.provider_resources;
  return Array.isArray(listed) ? (listed as ProviderResource[]) : [];
}

/** `ec2-snapshot snap-1, ec2-image ami-2`: for messages and logs. */
export function describeResources(resources: ProviderResource[]): string {
  return resources.map((r) => `${r.kind} ${r.id}${r.location ? ` (in ${r.location})` : ''}`).join(', ');
}
