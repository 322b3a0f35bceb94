/** A pool task stopped because its `signal` aborted (or the pool was destroyed) before it finished. */
export class PoolTaskCancelledError extends Error {
  readonly code = 'cancelled' as const;
  constructor(
    /** The abort reason (`signal.reason`), or the pool's own reason when it was destroyed. */
    readonly reason: unknown,
    /** True if the task ignored the cooperative cancel for the grace period and its thread was terminated. */
    readonly terminated: boolean,
    options?: ErrorOptions,
  ) {
    super(terminated ? 'worker task cancelled (its thread was terminated)' : 'worker task cancelled', options);
    this.name = 'PoolTaskCancelledError';
  }
}

/** The compiled worker module is not there (the project was not built). */
export class PoolWorkerMissingError extends Error {
  readonly code = 'worker_missing' as const;
  constructor(readonly file: string) {
    super(`worker module ${file} not found: run \`npm run build\` to compile the workers`);
    this.name = 'PoolWorkerMissingError';
  }
}

/** A task was submitted to a pool after `destroy()`. */
export class PoolDestroyedError extends Error {
  readonly code = 'pool_destroyed' as const;
  constructor() {
    super('the worker pool has been destroyed');
    this.name = 'PoolDestroyedError';
  }
}
