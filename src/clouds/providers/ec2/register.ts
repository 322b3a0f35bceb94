// The completed snapshot becomes an AMI: RegisterImage with the root device mapped to it, then the
// AMI and the snapshot are tagged with the factory's image id (that is how `delete` and a person
// in the console find what belongs together). Repeatable: an AMI of the same name, ours, is reused.
import { CreateTagsCommand, DescribeImagesCommand, RegisterImageCommand, type ArchitectureValues, type BootModeValues, type Tag } from '@aws-sdk/client-ec2';
import { ProviderError } from '../errors.js';
import { retrying, type RetryPolicy } from '../retry.js';
import { awsErrorFacts, classifyAwsFailure } from './aws-errors.js';
import type { Ec2Clients } from './clients.js';

export const IMAGE_ID_TAG = 'imagefactory:image-id';

export interface AmiSpec {
  name: string;
  description: string;
  architecture: ArchitectureValues;
  rootDeviceName: string;
  bootMode: BootModeValues;
  enaSupport: boolean;
  snapshotId: string;
  volumeSizeGiB: number;
  tags: Tag[];
}

export interface RegisterInput {
  clients: Ec2Clients;
  policy: RetryPolicy;
  signal: AbortSignal;
  log(line: string): void;
  /** Called as soon as the AMI exists (before tagging), so a failure after it still removes it. */
  onImage(imageId: string): void;
}

const ARCHITECTURES: Record<string, ArchitectureValues> = { x86_64: 'x86_64', i386: 'i386', aarch64: 'arm64', arm64: 'arm64' };
const BOOT_MODES = new Set(['legacy-bios', 'uefi', 'uefi-preferred']);

/** EC2's architecture for a template's; others cannot be AMIs. */
export function amiArchitecture(arch: string): ArchitectureValues {
  const value = ARCHITECTURES[arch];
  if (!value) throw new ProviderError('not_supported', `EC2 has no AMIs for the architecture ${arch}`);
  return value;
}

/** The boot mode asked for (`boot_mode` parameter) or the architecture's usual one. */
export function amiBootMode(requested: unknown, architecture: ArchitectureValues): BootModeValues {
  if (requested === undefined || requested === null || requested === '') return architecture === 'arm64' ? 'uefi' : 'legacy-bios';
  if (typeof requested !== 'string' || !BOOT_MODES.has(requested)) throw new ProviderError('not_supported', `boot_mode must be one of ${[...BOOT_MODES].join(', ')}`);
  return requested as BootModeValues;
}

/** AMI names allow 3–128 of letters, digits and `()[] ./-'@_`. */
export function amiName(templateName: string, imageId: string): string {
  const base = templateName.replace(/[^A-Za-z0-9()[\] ./'@_-]/g, '_').slice(0, 80) || 'image';
  return `${base} ${imageId}`.slice(0, 128);
}

export async function registerAmi(input: RegisterInput, spec: AmiSpec): Promise<string> {
  const existing = await findAmiByName(input, spec.name);
  let imageId = existing;
  if (!imageId) {
    try {
      const answer = await retrying(
        'RegisterImage',
        input.policy,
        input.signal,
        ({ signal }) =>
          input.clients.ec2.send(
            new RegisterImageCommand({
              Name: spec.name,
              Description: spec.description,
              Architecture: spec.architecture,
              RootDeviceName: spec.rootDeviceName,
              VirtualizationType: 'hvm',
              EnaSupport: spec.enaSupport,
              BootMode: spec.bootMode,
              BlockDeviceMappings: [
                { DeviceName: spec.rootDeviceName, Ebs: { SnapshotId: spec.snapshotId, VolumeSize: spec.volumeSizeGiB, VolumeType: 'gp3', DeleteOnTermination: true } },
              ],
            }),
            { abortSignal: signal },
          ),
        classifyAwsFailure,
        ({ attempt, delayMs, reason }) => input.log(`RegisterImage: attempt ${attempt} failed (${reason}); retrying in ${delayMs} ms`),
      );
      imageId = answer.ImageId;
    } catch (error) {
      // An attempt whose answer was lost did register: the retry is refused as a duplicate name.
      if (!(error instanceof ProviderError) || !/Duplicate/.test(error.message)) throw error;
      imageId = await findAmiByName(input, spec.name);
    }
    if (!imageId) throw new ProviderError('provider_error', 'RegisterImage answered without an image id');
  }
  input.onImage(imageId);
  await retrying(
    'CreateTags',
    input.policy,
    input.signal,
    ({ signal }) => input.clients.ec2.send(new CreateTagsCommand({ Resources: [imageId!, spec.snapshotId], Tags: spec.tags }), { abortSignal: signal }),
    classifyAwsFailure,
  );
  return imageId;
}

async function findAmiByName(input: RegisterInput, name: string): Promise<string | undefined> {
  try {
    const answer = await retrying(
      'DescribeImages',
      input.policy,
      input.signal,
      ({ signal }) => input.clients.ec2.send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: [name] }] }), { abortSignal: signal }),
      classifyAwsFailure,
    );
    return answer.Images?.find((image) => image.Name === name && image.State !== 'deregistered')?.ImageId;
  } catch (error) {
    if (error instanceof ProviderError && error.code === 'provider_error') {
      input.log(`DescribeImages by name failed (${awsErrorFacts(error).message}); registering anew`);
      return undefined;
    }
    throw error;
  }
}
