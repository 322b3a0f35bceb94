export { WorkerPool, DEFAULT_CANCEL_GRACE_MS, type WorkerPoolOptions, type TaskOptions, type Sha256Options, type BlockScanOptions } from './worker-pool.js';
export { PoolTaskCancelledError, PoolWorkerMissingError, PoolDestroyedError } from './errors.js';
export type { ByteRange, ScannedBlock } from './protocol.js';
