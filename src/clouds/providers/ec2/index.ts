// EC2: the raw `ec2` target into an EBS snapshot (EBS direct APIs), registered as an AMI.
import { cleanupAfterFailure, cleanupPolicy, withLeftovers } from '../cleanup-budget.js';
import { diskFormatOf } from '../disk-format.js';
import { ProviderError, throwIfAborted } from '../errors.js';
import { retryPolicy, settingsOf } from '../settings.js';
import type { CleanupRequest, DeleteRequest, ProviderPush, ProviderResource, PushContext, PushResult } from '../types.js';
import { ec2Access } from './access.js';
import { removeEc2Resources } from './cleanup.js';
import { ec2Clients } from './clients.js';
import { uploadSnapshot, type BlockCounters } from './ebs-upload.js';
import { amiArchitecture, amiBootMode, amiName, IMAGE_ID_TAG, registerAmi } from './register.js';

/** Share of the push's progress taken by the block upload; the rest is completion and registration. */
const UPLOAD_SHARE = 0.9;
/** EBS cancels a snapshot left pending this long (what a crashed daemon leaves behind). */
const PENDING_TIMEOUT_MINUTES = 60;

export const ec2Provider: ProviderPush = {
  targets: ['ec2'],

  async push(ctx: PushContext): Promise<PushResult> {
    if (isTrue(ctx.parameters.snapshot)) {
      throw new ProviderError('not_supported', 'snapshot-style EC2 builds (--snapshot, the ec2-32bit-util/ec2-64bit-util utility instances) are not supported yet: push a target image instead');
    }
    const settings = settingsOf(ctx.options);
    const access = ec2Access(ctx.provider, ctx.credentials);
    const { secrets } = access;
    const log = secrets.logger(ctx.log);
    const policy = retryPolicy(settings);
    const architecture = amiArchitecture(ctx.arch);
    const bootMode = amiBootMode(ctx.parameters.boot_mode, architecture);
    const name = amiName(ctx.templateName, ctx.imageId);
    const tags = [
      { Key: IMAGE_ID_TAG, Value: ctx.imageId },
      { Key: 'Name', Value: name },
    ];
    const clients = ec2Clients(access, settings.parallelRequests);
    const made: ProviderResource[] = [];
    const record = (resource: ProviderResource) => {
      made.push(resource);
      ctx.record(resource);
    };
    try {
      throwIfAborted(ctx.signal, 'the EC2 push');
      if ((await diskFormatOf(ctx.file)) !== 'raw') throw new ProviderError('input_invalid', 'the ec2 target must be a raw disk image, this one is qcow2');
      const upload = await uploadSnapshot({
        clients,
        pool: ctx.pool,
        file: ctx.file,
        policy,
        parallelRequests: settings.parallelRequests,
        pollIntervalMs: settings.pollIntervalMs,
        signal: ctx.signal,
        log,
        description: `imagefactory image ${ctx.imageId} (${ctx.templateName})`,
        tags,
        pendingTimeoutMinutes: PENDING_TIMEOUT_MINUTES,
        ...(access.encryption ? { encryption: access.encryption } : {}),
        onSnapshot: (id) => record({ kind: 'ec2-snapshot', id }),
        onProgress: (c) => ctx.progress({ fraction: UPLOAD_SHARE * uploadedShare(c), phase: 'uploading', activity: uploadActivity(c), counters: { ...c } }),
      });
      ctx.progress({ fraction: UPLOAD_SHARE + 0.05, phase: 'registering', activity: `Registering the AMI from snapshot ${upload.snapshotId}` });
      const imageId = await registerAmi(
        { clients, policy, signal: ctx.signal, log, onImage: (id) => record({ kind: 'ec2-image', id }) },
        {
          name,
          description: `imagefactory image ${ctx.imageId}`,
          architecture,
          rootDeviceName: typeof ctx.parameters.root_device_name === 'string' ? ctx.parameters.root_device_name : '/dev/xvda',
          bootMode,
          enaSupport: ctx.parameters.ena_support !== false && ctx.parameters.ena_support !== 'false',
          snapshotId: upload.snapshotId,
          volumeSizeGiB: upload.volumeSizeGiB,
          tags,
        },
      );
      ctx.progress({ fraction: 1, phase: 'registering', activity: `AMI ${imageId} registered` });
      log(`EC2 push done: AMI ${imageId}, snapshot ${upload.snapshotId}, ${upload.blocksSent} blocks sent, ${upload.blocksSkipped} skipped`);
      return {
        identifierOnProvider: imageId,
        ...(access.accountNumber ? { providerAccountIdentifier: access.accountNumber } : {}),
        resources: [...made],
        facts: {
          region: access.region,
          snapshot_id: upload.snapshotId,
          volume_size_gib: upload.volumeSizeGiB,
          blocks_sent: upload.blocksSent,
          blocks_skipped: upload.blocksSkipped,
          blocks_total: upload.blocksTotal,
          bytes_sent: upload.bytesSent,
          linear_checksum: upload.checksum,
          boot_mode: bootMode,
          architecture,
        },
      };
    } catch (error) {
      const left = await cleanupAfterFailure(made, (resources, signal) => removeEc2Resources({ clients, policy: cleanupPolicy(policy), signal, log }, resources), log, (t) => secrets.scrub(t));
      throw withLeftovers(secrets.error(error), left);
    } finally {
      clients.destroy();
    }
  },

  cleanup(request: CleanupRequest): Promise<void> {
    return withClients(request, (input) => removeEc2Resources(input, request.resources));
  },

  delete(request: DeleteRequest): Promise<void> {
    return withClients(request, async (input) => {
      await removeEc2Resources(input, [{ kind: 'ec2-image', id: request.identifierOnProvider }, ...(request.resources ?? [])]);
    });
  },
};

/** Runs `work` with clients for the request's provider, every error scrubbed. */
async function withClients(
  request: CleanupRequest | DeleteRequest,
  work: (input: Parameters<typeof removeEc2Resources>[0]) => Promise<void>,
): Promise<void> {
  const settings = settingsOf(request.options);
  const access = ec2Access(request.provider, request.credentials);
  const clients = ec2Clients(access, settings.parallelRequests);
  try {
    await work({ clients, policy: retryPolicy(settings), ...(request.signal ? { signal: request.signal } : {}), log: access.secrets.logger(request.log ?? (() => {})) });
  } catch (error) {
    throw access.secrets.error(error);
  } finally {
    clients.destroy();
  }
}

function uploadedShare(c: BlockCounters): number {
  return c.blocksTotal === 0 ? 1 : Math.min(1, (c.blocksSent + c.blocksSkipped) / c.blocksTotal);
}

function uploadActivity(c: BlockCounters): string {
  return `Uploading to EBS: ${c.blocksSent} blocks sent, ${c.blocksSkipped} skipped (zeros), of ${c.blocksTotal}`;
}

function isTrue(value: unknown): boolean {
  return value === true || value === 'true' || value === 1 || value === '1' || value === 'yes';
}

