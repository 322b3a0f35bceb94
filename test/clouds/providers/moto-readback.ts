// Reading back what a push left in moto: the snapshot's blocks through the EBS direct APIs, the
// snapshots and AMIs of the account, and the non-zero 512 KiB blocks of the raw image pushed.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { EBSClient, GetSnapshotBlockCommand, ListSnapshotBlocksCommand } from '@aws-sdk/client-ebs';
import { DescribeImagesCommand, DescribeSnapshotsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { EBS_BLOCK_SIZE } from '../../../src/clouds/providers/ec2/ebs-upload.js';
import type { Moto } from '../../../bench/providers/moto.js';

export interface MotoReader {
  ec2: EC2Client;
  ebs: EBSClient;
  /** Every snapshot of the account, sorted. */
  snapshots(): Promise<string[]>;
  /** Every AMI of the account, sorted. */
  images(): Promise<string[]>;
  /** The snapshots and AMIs tagged with a factory image id. */
  taggedWith(imageId: string): Promise<string[]>;
  /** sha256 of each block the snapshot holds, by block index. */
  snapshotBlockHashes(snapshotId: string): Promise<Map<number, string>>;
  destroy(): void;
}

/** `<provider_credentials>` for moto's access key, with an account number. */
export const motoCredentialsXml = (moto: Moto, account = '123456789012') =>
  `<provider_credentials><ec2_credentials><account_number>${account}</account_number><access_key>${moto.accessKeyId}</access_key><secret_access_key>${moto.secretAccessKey}</secret_access_key></ec2_credentials></provider_credentials>`;

export function motoReader(moto: Moto): MotoReader {
  const sdk = { region: 'us-east-1', endpoint: moto.url, credentials: { accessKeyId: moto.accessKeyId, secretAccessKey: moto.secretAccessKey } };
  const ec2 = new EC2Client(sdk);
  const ebs = new EBSClient(sdk);
  return {
    ec2,
    ebs,
    snapshots: async () => ((await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots ?? []).map((s) => s.SnapshotId!).sort(),
    images: async () => ((await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images ?? []).map((i) => i.ImageId!).sort(),
    async taggedWith(imageId) {
      const filter = [{ Name: 'tag:imagefactory:image-id', Values: [imageId] }];
      const snapshots = (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: filter }))).Snapshots ?? [];
      const images = (await ec2.send(new DescribeImagesCommand({ Owners: ['self'], Filters: filter }))).Images ?? [];
      return [...snapshots.map((s) => s.SnapshotId!), ...images.map((i) => i.ImageId!)];
    },
    async snapshotBlockHashes(snapshotId) {
      const blocks: { BlockIndex?: number; BlockToken?: string }[] = [];
      let NextToken: string | undefined;
      do {
        const page = await ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, NextToken }));
        blocks.push(...(page.Blocks ?? []));
        NextToken = page.NextToken;
      } while (NextToken);
      const hashes = new Map<number, string>();
      // Eight at a time: moto serves blocks one request each.
      for (let i = 0; i < blocks.length; i += 8) {
        await Promise.all(
          blocks.slice(i, i + 8).map(async (b) => {
            const got = await ebs.send(new GetSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: Number(b.BlockIndex), BlockToken: b.BlockToken! }));
            hashes.set(Number(b.BlockIndex), createHash('sha256').update(await got.BlockData!.transformToByteArray()).digest('hex'));
          }),
        );
      }
      return hashes;
    },
    destroy() {
      ec2.destroy();
      ebs.destroy();
    },
  };
}

/** sha256 of each 512 KiB block of a raw image that holds a non-zero byte (the last block padded with zeros, as EBS does). */
export async function nonZeroBlockHashes(file: string): Promise<Map<number, string>> {
  const handle = await open(file, 'r');
  const hashes = new Map<number, string>();
  try {
    const { size } = await handle.stat();
    const block = Buffer.alloc(EBS_BLOCK_SIZE);
    const zero = Buffer.alloc(EBS_BLOCK_SIZE);
    for (let index = 0; index * EBS_BLOCK_SIZE < size; index++) {
      block.fill(0);
      await handle.read(block, 0, EBS_BLOCK_SIZE, index * EBS_BLOCK_SIZE);
      if (!block.equals(zero)) hashes.set(index, createHash('sha256').update(block).digest('hex'));
    }
  } finally {
    await handle.close();
  }
  return hashes;
}
