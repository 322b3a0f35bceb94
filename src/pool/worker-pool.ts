// A pool of worker threads (piscina) for CPU-heavy loops; see docs/ARCHITECTURE.md, "Work placement".
//
// Progress and cancel travel on a per-task MessageChannel with comlink (design in ./protocol.ts).
// Cancelling is two-staged because piscina's own abort terminates the thread at once, without the
// task's cleanup: when the caller's signal aborts, the task is first asked to stop (it checks a flag
// between chunks and rejects); only if it has not settled after `cancelGraceMs` is the run aborted
// through piscina. A task still waiting in the queue (it has not called `begin()`) is removed from
// the queue at once, as that kills nothing.
import { PROJECT_ROOT } from '../version.js';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { expose, wrap } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { Piscina } from 'piscina';
import { PoolDestroyedError, PoolTaskCancelledError, PoolWorkerMissingError } from './errors.js';
import { CANCELLED_MESSAGE, type BlockScanTask, type ByteRange, type HostApi, type ScannedBlock, type Sha256Task, type TaskControlApi } from './protocol.js';

export interface WorkerPoolOptions {
  /** Most threads at once; default `max(1, os.availableParallelism() - 1)`, leaving a core to the main thread. */
  maxThreads?: number;
  /** How long a cancelled task may take to stop by itself before its thread is terminated; default 2000 ms. */
  cancelGraceMs?: number;
  /** Path of the compiled sha256 task module; default `dist/workers/sha256.js` of the project (tests swap it). */
  sha256Worker?: string;
  /** Path of the compiled block-scan task module; default `dist/workers/block-scan.js` of the project. */
  blockScanWorker?: string;
  /** A worker thread failed outside any task (nothing else would see it); default `process.emitWarning`. */
  onWorkerError?: (error: Error) => void;
}

export interface TaskOptions {
  /**
   * Aborting cancels the task: the promise then rejects with `PoolTaskCancelledError`, once the task
   * has really stopped (at most `cancelGraceMs` later), so its files are no longer open. An abort
   * that comes after the task finished but before the promise settled still rejects.
   */
  signal?: AbortSignal;
  /**
   * Called in order with `done` strictly increasing (throttled: about each 1 % or 100 ms); the last
   * call is `(total, total)`, made before the promise resolves. Exceptions it throws are ignored.
   */
  onProgress?: (done: number, total: number) => void;
}

export interface Sha256Options extends TaskOptions {
  /** Hash only these bytes of the file; they must lie inside it. */
  range?: ByteRange;
}

export interface BlockScanOptions extends TaskOptions {
  /** Bytes per block (EBS: 512 KiB). */
  blockSize: number;
  /** The blocks to read; progress counts blocks. */
  indexes: number[];
}

export const DEFAULT_CANCEL_GRACE_MS = 2000;

interface InFlight {
  cancel(reason: unknown): void;
  settled: Promise<unknown>;
}

export class WorkerPool {
  readonly #piscina: Piscina;
  readonly #sha256Worker: string;
  readonly #blockScanWorker: string;
  readonly #graceMs: number;
  readonly #inFlight = new Set<InFlight>();
  #destroyed: Promise<void> | undefined;

  constructor(options: WorkerPoolOptions = {}) {
    const maxThreads = options.maxThreads ?? Math.max(1, availableParallelism() - 1);
    if (!Number.isInteger(maxThreads) || maxThreads < 1) throw new RangeError(`maxThreads must be a positive integer, got ${maxThreads}`);
    this.#graceMs = options.cancelGraceMs ?? DEFAULT_CANCEL_GRACE_MS;
    this.#sha256Worker = options.sha256Worker ?? join(PROJECT_ROOT, 'dist', 'workers', 'sha256.js');
    if (!existsSync(this.#sha256Worker)) throw new PoolWorkerMissingError(this.#sha256Worker);
    this.#blockScanWorker = options.blockScanWorker ?? join(PROJECT_ROOT, 'dist', 'workers', 'block-scan.js');
    this.#piscina = new Piscina({ filename: this.#sha256Worker, maxThreads, minThreads: 1, idleTimeout: 30_000 });
    const onWorkerError = options.onWorkerError ?? ((error: Error) => process.emitWarning(error));
    this.#piscina.on('error', onWorkerError);
  }

  /** The sha256 of `file` (or of `range` of it) as lowercase hex. */
  sha256(file: string, options: Sha256Options = {}): Promise<string> {
    const { range, ...taskOptions } = options;
    if (range !== undefined) checkRange(range);
    return this.#run<string>(this.#sha256Worker, { file, ...(range ? { range } : {}) } satisfies Omit<Sha256Task, 'port'>, taskOptions);
  }

  /**
   * Of the given blocks of `file`, those holding a non-zero byte, each with the base64 SHA-256 of
   * its `blockSize` bytes (a block past the end of the file counts as padded with zeros).
   */
  scanBlocks(file: string, options: BlockScanOptions): Promise<ScannedBlock[]> {
    const { blockSize, indexes, ...taskOptions } = options;
    if (!Number.isSafeInteger(blockSize) || blockSize <= 0) throw new RangeError(`blockSize must be a positive integer, got ${blockSize}`);
    if (!existsSync(this.#blockScanWorker)) return Promise.reject(new PoolWorkerMissingError(this.#blockScanWorker));
    return this.#run<ScannedBlock[]>(this.#blockScanWorker, { file, blockSize, indexes } satisfies Omit<BlockScanTask, 'port'>, taskOptions);
  }

  /**
   * Cancels the tasks still running (as if their signals aborted), waits for them to settle, then
   * terminates the threads. Later calls to task methods reject with `PoolDestroyedError`.
   */
  destroy(): Promise<void> {
    this.#destroyed ??= (async () => {
      const running = [...this.#inFlight];
      const reason = new PoolDestroyedError();
      for (const task of running) task.cancel(reason);
      await Promise.allSettled(running.map((task) => task.settled));
      await this.#piscina.destroy();
    })();
    return this.#destroyed;
  }

  #run<R>(filename: string, payload: object, { signal, onProgress }: TaskOptions): Promise<R> {
    if (this.#destroyed) return Promise.reject(new PoolDestroyedError());
    if (signal?.aborted) return Promise.reject(new PoolTaskCancelledError(signal.reason, false));

    const cancel = new AbortController(); // the caller's signal or destroy(): asks the task to stop
    const terminate = new AbortController(); // piscina's abort: kills the thread (or dequeues the task)
    const { port1, port2 } = new MessageChannel();
    const endpoint = nodeEndpoint(port1);
    let started = false;
    let settled = false;
    const host: HostApi = {
      begin() {
        started = true;
        return cancel.signal.aborted;
      },
      progress(done, total) {
        if (settled || !onProgress) return;
        try {
          onProgress(done, total);
        } catch {
          // A failing progress listener must not fail the work it listens to.
        }
      },
    };
    expose(host, endpoint);
    const control = wrap<TaskControlApi>(endpoint);

    let graceTimer: NodeJS.Timeout | undefined;
    cancel.signal.addEventListener('abort', () => {
      if (!started) {
        terminate.abort(cancel.signal.reason);
        return;
      }
      control.cancel().catch(() => {});
      graceTimer = setTimeout(() => terminate.abort(cancel.signal.reason), this.#graceMs);
    }, { once: true });
    const onCallerAbort = () => cancel.abort(signal?.reason);
    signal?.addEventListener('abort', onCallerAbort, { once: true });

    const entry: InFlight = { cancel: (reason) => cancel.abort(reason), settled: Promise.resolve() };
    this.#inFlight.add(entry);
    const task = { ...payload, port: port2 };
    const run = (async () => {
      try {
        const result = (await this.#piscina.run(task, { filename, transferList: [port2], signal: terminate.signal })) as R;
        if (cancel.signal.aborted) throw new PoolTaskCancelledError(cancel.signal.reason, false);
        return result;
      } catch (error) {
        if (error instanceof PoolTaskCancelledError) throw error;
        if (cancel.signal.aborted || (error instanceof Error && error.message === CANCELLED_MESSAGE)) {
          throw new PoolTaskCancelledError(cancel.signal.reason, terminate.signal.aborted && started, { cause: error });
        }
        throw error;
      } finally {
        settled = true;
        clearTimeout(graceTimer);
        signal?.removeEventListener('abort', onCallerAbort);
        port1.close(); // closes both ends: nothing is left to keep the process alive
        this.#inFlight.delete(entry);
      }
    })();
    entry.settled = run.catch(() => {});
    return run;
  }
}

function checkRange({ offset, length }: ByteRange): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`range offset and length must be non-negative integers, got ${offset}+${length}`);
  }
}

