// Removing what an EC2 push made: AMIs are deregistered before their snapshots are deleted (EC2
// refuses to delete a snapshot an AMI uses). A pending snapshot is deleted like any other, which
// is how an EBS direct upload is abandoned. What is already gone counts as removed.
import { DeleteSnapshotCommand, DeregisterImageCommand, DescribeImagesCommand, DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import { ProviderError } from '../errors.js';
import { retrying, type RetryPolicy } from '../retry.js';
import type { ProviderResource } from '../types.js';
import { classifyAwsFailure, isNotFound } from './aws-errors.js';
import type { Ec2Clients } from './clients.js';
import { IMAGE_ID_TAG } from './register.js';

export interface CleanupInput {
  clients: Ec2Clients;
  policy: RetryPolicy;
  signal?: AbortSignal;
  log(line: string): void;
}

export async function removeEc2Resources(input: CleanupInput, resources: ProviderResource[]): Promise<void> {
  const images = unique(resources.filter((r) => r.kind === 'ec2-image').map((r) => r.id));
  // An AMI's own snapshots go with it, also those it maps that were not recorded.
  const expanded = [...resources];
  for (const id of images) expanded.push(...(await resourcesOfAmi(input, id)));
  const snapshots = unique(expanded.filter((r) => r.kind === 'ec2-snapshot').map((r) => r.id));
  for (const id of images) await ignoringNotFound(input, `DeregisterImage ${id}`, (signal) => input.clients.ec2.send(new DeregisterImageCommand({ ImageId: id }), { abortSignal: signal }));
  for (const id of snapshots) await ignoringNotFound(input, `DeleteSnapshot ${id}`, (signal) => input.clients.ec2.send(new DeleteSnapshotCommand({ SnapshotId: id }), { abortSignal: signal }));
}

/**
 * The resources of a published AMI: the AMI, the snapshots its block devices map, and the
 * snapshots tagged with the same factory image id (the pushed one, even where the AMI's mapping
 * does not show it — moto's does not).
 */
export async function resourcesOfAmi(input: CleanupInput, imageId: string): Promise<ProviderResource[]> {
  const described = await ignoringNotFound(input, `DescribeImages ${imageId}`, (signal) =>
    input.clients.ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }), { abortSignal: signal }),
  );
  const image = described?.Images?.find((i) => i.ImageId === imageId);
  if (!image) return [];
  const found: ProviderResource[] = [{ kind: 'ec2-image', id: imageId }];
  for (const mapping of image.BlockDeviceMappings ?? []) {
    if (mapping.Ebs?.SnapshotId) found.push({ kind: 'ec2-snapshot', id: mapping.Ebs.SnapshotId });
  }
  const factoryId = image.Tags?.find((t) => t.Key === IMAGE_ID_TAG)?.Value;
  if (factoryId) {
    const tagged = await retrying(
      'DescribeSnapshots',
      input.policy,
      input.signal,
      (info) =>
        input.clients.ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: [{ Name: `tag:${IMAGE_ID_TAG}`, Values: [factoryId] }] }), { abortSignal: info.signal }),
      classifyAwsFailure,
    );
    for (const snapshot of tagged.Snapshots ?? []) if (snapshot.SnapshotId) found.push({ kind: 'ec2-snapshot', id: snapshot.SnapshotId });
  }
  return found;
}

async function ignoringNotFound<T>(input: CleanupInput, what: string, call: (signal: AbortSignal) => Promise<T>): Promise<T | undefined> {
  try {
    return await retrying(
      what,
      input.policy,
      input.signal,
      ({ signal }) => call(signal),
      (error, info) => (isNotFound(error) ? { retry: false, error: new ProviderError('provider_error', 'not found', { notFound: true }) } : classifyAwsFailure(error, info)),
      ({ attempt, delayMs, reason }) => input.log(`${what}: attempt ${attempt} failed (${reason}); retrying in ${delayMs} ms`),
    );
  } catch (error) {
    if (error instanceof ProviderError && error.details?.notFound === true) {
      input.log(`${what}: already gone`);
      return undefined;
    }
    throw error;
  }
}

const unique = (ids: string[]) => [...new Set(ids)];
