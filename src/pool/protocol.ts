// The contract between `WorkerPool` (main thread) and the task modules in `workers/`.
//
// Every task gets its own `MessageChannel`: the main thread keeps `port1`, the task receives `port2`
// (in the task object, moved with `transferList`). Over it, with comlink on both ends:
//
// - the main thread exposes `HostApi`: the task calls `begin()` once before it touches anything (the
//   answer says whether it was already cancelled while queued) and `progress()` as it goes;
// - the task exposes `TaskControlApi`: the main thread calls `cancel()`, which only sets a flag in
//   the task; the task checks it between chunks (its reads are async, so its event loop delivers the
//   message while it waits for the disk) and then throws the `CANCELLED_MESSAGE` error.
//
// A flag held by the task, rather than the task asking `isCancelled()` of the main thread, keeps the
// task's loop free of round trips: its speed does not depend on how busy the main thread is.
// The main thread closes `port1` when the task settles, which closes both ends.
import type { MessagePort } from 'node:worker_threads';

/** A byte window of a file: `length` bytes from `offset`. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** What every task receives, besides its own fields. */
export interface TaskEnvelope {
  port: MessagePort;
}

export interface Sha256Task extends TaskEnvelope {
  file: string;
  range?: ByteRange;
}

export interface BlockScanTask extends TaskEnvelope {
  file: string;
  /** Bytes per block; block `i` covers `[i·blockSize, (i+1)·blockSize)`. */
  blockSize: number;
  /** The blocks to look at, in the order to read them. */
  indexes: number[];
}

/** A block that holds at least one non-zero byte, and its SHA-256 (base64, as EBS wants it). */
export interface ScannedBlock {
  index: number;
  sha256: string;
}

/** Exposed by the main thread on its end of the task's channel. */
export interface HostApi {
  /** Called once by the task before it starts working; true means: stop now, you were cancelled. */
  begin(): boolean;
  /** Bytes (or other units) done out of total; calls arrive in order, `done` strictly increasing. */
  progress(done: number, total: number): void;
}

/** Exposed by the task on its end of the channel. */
export interface TaskControlApi {
  /** Asks the task to stop at its next check; it then rejects with `CANCELLED_MESSAGE`. */
  cancel(): void;
}

/** The task's rejection message on a cooperative cancel (only the message survives the trip back). */
export const CANCELLED_MESSAGE = 'worker task cancelled';
