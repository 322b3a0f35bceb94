// A raw image into an EBS snapshot through the EBS direct APIs (StartSnapshot, PutSnapshotBlock,
// CompleteSnapshot): seconds instead of ImportSnapshot's tens of minutes, and no S3 bucket.
//
// Only blocks with data travel. The sparse map names the candidate blocks (holes are never read);
// the worker pool reads the candidates in batches, drops those that are all zeros and hashes the
// rest; `parallelRequests` uploaders send them, each block with its SHA-256, each request retried
// on its own. CompleteSnapshot carries the LINEAR checksum: the SHA-256 of the blocks' digests in
// block order.
import { createHash, randomUUID } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { CompleteSnapshotCommand, PutSnapshotBlockCommand, StartSnapshotCommand, type Tag as EbsTag } from '@aws-sdk/client-ebs';
import { DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import type { ScannedBlock, WorkerPool } from '../../../pool/index.js';
import { PoolTaskCancelledError } from '../../../pool/index.js';
import { cancelledError, ProviderError } from '../errors.js';
import { retrying, sleep, type RetryPolicy } from '../retry.js';
import { classifyAwsFailure } from './aws-errors.js';
import type { Ec2Clients } from './clients.js';
import { blocksTouched, dataRanges } from './sparse-map.js';

export const EBS_BLOCK_SIZE = 512 * 1024;
const GiB = 1024 ** 3;
/** Candidate blocks per worker task: 32 MiB, small enough for prompt progress and cancel. */
const SCAN_BATCH = 64;

export interface BlockCounters {
  blocksSent: number;
  blocksSkipped: number;
  blocksTotal: number;
  /** Block bytes of every PutSnapshotBlock attempt, retries included. */
  bytesSent: number;
}

export interface SnapshotUploadInput {
  clients: Ec2Clients;
  pool: WorkerPool;
  file: string;
  policy: RetryPolicy;
  parallelRequests: number;
  pollIntervalMs: number;
  signal: AbortSignal;
  log(line: string): void;
  description: string;
  tags: EbsTag[];
  /** `Encrypted`/`KmsKeyArn` of StartSnapshot; omitted, the account's encryption-by-default decides. */
  encryption?: { encrypted: boolean; kmsKeyArn?: string };
  /** Minutes after which EBS cancels the snapshot by itself if it is not completed (10…4320): what a crashed push leaves is removed by the provider. */
  pendingTimeoutMinutes: number;
  /** Called as soon as the snapshot exists. */
  onSnapshot(snapshotId: string): void;
  onProgress(counters: BlockCounters): void;
}

export interface SnapshotUploadResult extends BlockCounters {
  snapshotId: string;
  volumeSizeGiB: number;
  /** The LINEAR checksum sent at CompleteSnapshot (base64), or null for an image of zeros only. */
  checksum: string | null;
}

export async function uploadSnapshot(input: SnapshotUploadInput): Promise<SnapshotUploadResult> {
  const { clients, policy, signal, log } = input;
  const { size } = await stat(input.file);
  const volumeSizeGiB = Math.max(1, Math.ceil(size / GiB));
  const candidates = blocksTouched(await dataRanges(input.file, signal), EBS_BLOCK_SIZE);
  const counters: BlockCounters = { blocksSent: 0, blocksSkipped: 0, blocksTotal: Math.ceil(size / EBS_BLOCK_SIZE), bytesSent: 0 };
  counters.blocksSkipped = counters.blocksTotal - candidates.length;
  log(`EBS upload: ${counters.blocksTotal} blocks of 512 KiB, ${candidates.length} allocated, volume ${volumeSizeGiB} GiB`);

  const retryLog = (what: string) => ({ attempt, delayMs, reason }: { attempt: number; delayMs: number; reason: string }) =>
    log(`${what}: attempt ${attempt} failed (${reason}); retrying in ${delayMs} ms`);
  const clientToken = randomUUID();
  const started = await retrying(
    'StartSnapshot',
    policy,
    signal,
    ({ signal: s }) =>
      clients.ebs.send(
        new StartSnapshotCommand({
          VolumeSize: volumeSizeGiB,
          ClientToken: clientToken,
          Description: input.description,
          Tags: input.tags,
          Timeout: input.pendingTimeoutMinutes,
          ...(input.encryption ? { Encrypted: input.encryption.encrypted, ...(input.encryption.kmsKeyArn ? { KmsKeyArn: input.encryption.kmsKeyArn } : {}) } : {}),
        }),
        { abortSignal: s },
      ),
    classifyAwsFailure,
    retryLog('StartSnapshot'),
  );
  const snapshotId = started.SnapshotId;
  if (!snapshotId) throw new ProviderError('provider_error', 'StartSnapshot answered without a snapshot id');
  input.onSnapshot(snapshotId);
  input.onProgress({ ...counters });

  const digests = await sendBlocks(input, snapshotId, candidates, counters, retryLog);
  const checksum = linearChecksum(digests);
  await completeSnapshot(input, snapshotId, counters.blocksSent, checksum);
  await waitForSnapshot(input, snapshotId);
  return { snapshotId, volumeSizeGiB, checksum, ...counters };
}

/** Scans and sends every candidate block; returns the digests of the blocks sent, by index. */
async function sendBlocks(
  input: SnapshotUploadInput,
  snapshotId: string,
  candidates: number[],
  counters: BlockCounters,
  retryLog: (what: string) => (info: { attempt: number; delayMs: number; reason: string }) => void,
): Promise<Map<number, Buffer>> {
  const stop = new AbortController(); // the first failure stops the scanner and the other uploaders
  const signal = AbortSignal.any([input.signal, stop.signal]);
  const digests = new Map<number, Buffer>();
  const queue: ScannedBlock[] = [];
  let scanDone = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  const next = async (): Promise<ScannedBlock | undefined> => {
    for (;;) {
      if (signal.aborted) return undefined;
      const block = queue.shift();
      if (block) return block;
      if (scanDone) return undefined;
      await new Promise<void>((resolve) => {
        const previous = wake;
        wake = () => {
          previous?.();
          resolve();
        };
      });
    }
  };
  signal.addEventListener('abort', notify, { once: true });

  const handle = await open(input.file, 'r');
  const scanner = async (): Promise<void> => {
    try {
      for (let at = 0; at < candidates.length; at += SCAN_BATCH) {
        if (signal.aborted) return;
        // Stay at most a few batches ahead of the uploaders: the scan competes with them for the CPU.
        while (queue.length > SCAN_BATCH * 2 && !signal.aborted) await sleep(20, signal, 'block scan').catch(() => {});
        const indexes = candidates.slice(at, at + SCAN_BATCH);
        const found = await input.pool.scanBlocks(input.file, { blockSize: EBS_BLOCK_SIZE, indexes, signal });
        counters.blocksSkipped += indexes.length - found.length;
        queue.push(...found);
        notify();
        if (found.length < indexes.length) input.onProgress({ ...counters });
      }
    } finally {
      scanDone = true;
      notify();
    }
  };

  const uploader = async (): Promise<void> => {
    const data = Buffer.alloc(EBS_BLOCK_SIZE);
    for (let block = await next(); block; block = await next()) {
      const { index, sha256 } = block;
      await readBlock(handle, data, index);
      const sent = await retrying(
        `PutSnapshotBlock ${index}`,
        input.policy,
        signal,
        ({ signal: s }) => {
          counters.bytesSent += EBS_BLOCK_SIZE;
          return input.clients.ebs.send(
            new PutSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: index, BlockData: data, DataLength: EBS_BLOCK_SIZE, Checksum: sha256, ChecksumAlgorithm: 'SHA256' }),
            { abortSignal: s },
          );
        },
        classifyAwsFailure,
        retryLog(`PutSnapshotBlock ${index}`),
      );
      if (sent.Checksum && sent.Checksum !== sha256) {
        throw new ProviderError('provider_error', `EBS stored block ${index} with another checksum than the one sent`, { block: index });
      }
      digests.set(index, Buffer.from(sha256, 'base64'));
      counters.blocksSent++;
      input.onProgress({ ...counters });
    }
  };

  // The first failure is the cause; the others are the stop it caused.
  let firstError: unknown;
  const fail = (error: unknown) => {
    if (firstError === undefined && !stop.signal.aborted) firstError = error;
    stop.abort();
  };
  try {
    await Promise.all([scanner().catch(fail), ...Array.from({ length: input.parallelRequests }, () => uploader().catch(fail))]);
  } finally {
    signal.removeEventListener('abort', notify);
    await handle.close();
  }
  if (input.signal.aborted) throw cancelledError('the EBS upload');
  if (firstError !== undefined) throw firstError instanceof PoolTaskCancelledError ? cancelledError('the block scan') : firstError;
  return digests;
}

async function readBlock(handle: FileHandle, data: Buffer, index: number): Promise<void> {
  let filled = 0;
  while (filled < data.length) {
    const { bytesRead } = await handle.read(data, filled, data.length - filled, index * EBS_BLOCK_SIZE + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  data.fill(0, filled);
}

/** SHA-256 over the blocks' SHA-256 digests in ascending block order (EBS's LINEAR aggregation), base64. */
export function linearChecksum(digests: Map<number, Buffer>): string | null {
  if (digests.size === 0) return null;
  const hash = createHash('sha256');
  for (const index of [...digests.keys()].sort((a, b) => a - b)) hash.update(digests.get(index)!);
  return hash.digest('base64');
}

async function completeSnapshot(input: SnapshotUploadInput, snapshotId: string, changed: number, checksum: string | null): Promise<void> {
  try {
    await retrying(
      'CompleteSnapshot',
      input.policy,
      input.signal,
      ({ signal }) =>
        input.clients.ebs.send(
          new CompleteSnapshotCommand({
            SnapshotId: snapshotId,
            ChangedBlocksCount: changed,
            ...(checksum ? { Checksum: checksum, ChecksumAlgorithm: 'SHA256', ChecksumAggregationMethod: 'LINEAR' } : {}),
          }),
          { abortSignal: signal },
        ),
      classifyAwsFailure,
      ({ attempt, delayMs, reason }) => input.log(`CompleteSnapshot: attempt ${attempt} failed (${reason}); retrying in ${delayMs} ms`),
    );
  } catch (error) {
    // A retry after a completion whose answer was lost is refused; a completed snapshot says it worked.
    if (error instanceof ProviderError && error.code === 'provider_error' && (await snapshotState(input, snapshotId)) === 'completed') return;
    throw error;
  }
}

async function snapshotState(input: SnapshotUploadInput, snapshotId: string): Promise<string> {
  const answer = await retrying(
    'DescribeSnapshots',
    input.policy,
    input.signal,
    ({ signal }) => input.clients.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }), { abortSignal: signal }),
    classifyAwsFailure,
  );
  const state = answer.Snapshots?.[0]?.State;
  return state ?? 'unknown';
}

/** Waits until EBS has the snapshot `completed`; `error` fails the push. */
async function waitForSnapshot(input: SnapshotUploadInput, snapshotId: string): Promise<void> {
  for (;;) {
    let state: string;
    try {
      state = await snapshotState(input, snapshotId);
    } catch (error) {
      // Right after CompleteSnapshot the snapshot can be briefly unknown to EC2 (eventual consistency).
      if (!(error instanceof ProviderError) || !/NotFound/.test(error.message)) throw error;
      state = 'unknown';
    }
    if (state === 'completed') return;
    if (state === 'error') throw new ProviderError('image_failed', `EBS put snapshot ${snapshotId} in state error`, { snapshotId });
    if (Date.now() >= input.policy.deadline) throw new ProviderError('timeout', `snapshot ${snapshotId} was still ${state} when the push's time budget ran out`, { snapshotId });
    await sleep(input.pollIntervalMs, input.signal, 'waiting for the snapshot');
  }
}
