// `npm run bench -- push`: the EC2 push to moto of a Debian-sized raw image (2 GiB, ≈ 700 MB of
// data), once with 1 request in flight and once with N, in the same run. Bytes sent are counted
// at the wire, by a pass-through proxy in front of moto (block bodies forwarded), and compared
// with the bytes the image's filesystem allocated.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ec2Provider } from '../src/clouds/providers/ec2/index.js';
import { EBS_BLOCK_SIZE } from '../src/clouds/providers/ec2/ebs-upload.js';
import { WorkerPool } from '../src/pool/index.js';
import { debianSizedImage } from './providers/debian-sized-image.js';
import { startFaultProxy } from './providers/fault-proxy.js';
import { startMoto } from './providers/moto.js';

export interface PushRow {
  name: string;
  parallel: number;
  seconds: number;
  blocksSent: number;
  blocksSkipped: number;
  bytesAtWire: number;
}

export interface PushBench {
  rows: PushRow[];
  imageBytes: number;
  allocatedBytes: number;
  /** Bytes a push of every block would send. */
  fullUploadBytes: number;
}

export async function pushBench(parallel = Number(process.env.BENCH_PUSH_PARALLEL ?? 8)): Promise<PushBench> {
  const dir = await mkdtemp(join(process.env.BENCH_TMPDIR ?? '/var/tmp', 'imagefactory-bench-push-'));
  const moto = await startMoto(dir);
  const proxy = await startFaultProxy(moto.url, { slowMs: 0 });
  const pool = new WorkerPool();
  try {
    const image = await debianSizedImage(dir);
    const provider = JSON.stringify({ name: 'ec2-us-east-1', endpoint: proxy.url });
    const credentials = JSON.stringify({ access_key: moto.accessKeyId, secret_access_key: moto.secretAccessKey });
    const rows: PushRow[] = [];
    for (const n of [1, parallel]) {
      proxy.forwardedBlockBytes = 0;
      const started = performance.now();
      const result = await ec2Provider.push({
        imageId: randomUUID(),
        target: 'ec2',
        file: image.file,
        templateName: 'bench-debian',
        arch: 'x86_64',
        provider,
        credentials,
        parameters: {},
        signal: new AbortController().signal,
        log: () => {},
        progress: () => {},
        record: () => {},
        pool,
        options: { parallelRequests: n, pollIntervalMs: 100 },
      });
      const seconds = (performance.now() - started) / 1000;
      rows.push({
        name: `${n} request${n > 1 ? 's' : ''} in flight`,
        parallel: n,
        seconds,
        blocksSent: result.facts.blocks_sent as number,
        blocksSkipped: result.facts.blocks_skipped as number,
        bytesAtWire: proxy.forwardedBlockBytes,
      });
      await ec2Provider.delete({ target: 'ec2', provider, credentials, identifierOnProvider: result.identifierOnProvider, resources: result.resources });
    }
    return { rows, imageBytes: image.size, allocatedBytes: image.allocated, fullUploadBytes: Math.ceil(image.size / EBS_BLOCK_SIZE) * EBS_BLOCK_SIZE };
  } finally {
    await pool.destroy();
    await proxy.stop();
    await moto.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
