export { WorkerPool, DEFAULT_CANCEL_GRACE_MS, type WorkerPoolOptions, type TaskOptions, type Sha256Options } from './worker-pool.js';
export { PoolTaskCancelledError, PoolWorkerMissingError, PoolDestroyedError } from './errors.js';
export type { ByteRange } from './protocol.js';
