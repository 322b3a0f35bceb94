// The task side of the pool's per-task channel (see src/pool/protocol.ts for the whole design).
import type { MessagePort } from 'node:worker_threads';
import { expose, wrap } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { CANCELLED_MESSAGE, type HostApi, type TaskControlApi } from '../src/pool/protocol.js';

/** Progress is sent when this much time has passed since the last report… */
export const PROGRESS_INTERVAL_MS = 100;
/** …or when `done` has advanced by this fraction of `total`, whichever comes first. */
export const PROGRESS_STEP = 0.01;

export interface TaskChannel {
  /** True once the main thread has asked the task to stop. */
  readonly cancelled: boolean;
  /** Throws the cancel error if the main thread has asked the task to stop: call it between chunks. */
  throwIfCancelled(): void;
  /**
   * Reports progress, throttled: the first report, then one each `PROGRESS_INTERVAL_MS` or each
   * `PROGRESS_STEP` of `total`; never `done >= total` (that is `finish`'s) nor a repeated value.
   */
  progress(done: number, total: number): void;
  /** Sends the last report (`total` of `total`) and waits until the main thread has handled it, so
   * that it is not overtaken by the task's result, which travels on another port. */
  finish(total: number): Promise<void>;
  /** Closes the port; call it in a `finally`. */
  close(): void;
}

export function cancelledError(): Error {
  return Object.assign(new Error(CANCELLED_MESSAGE), { code: 'cancelled' });
}

/** Connects to the main thread, and throws the cancel error at once if the task was cancelled while queued. */
export async function openTaskChannel(port: MessagePort): Promise<TaskChannel> {
  const endpoint = nodeEndpoint(port);
  const host = wrap<HostApi>(endpoint);
  let cancelled = false;
  const control: TaskControlApi = {
    cancel() {
      cancelled = true;
    },
  };
  expose(control, endpoint);

  let lastDone = -1;
  let lastAt = 0;
  const send = (done: number, total: number): Promise<void> => {
    lastDone = done;
    lastAt = performance.now();
    return host.progress(done, total);
  };

  const channel: TaskChannel = {
    get cancelled() {
      return cancelled;
    },
    throwIfCancelled() {
      if (cancelled) throw cancelledError();
    },
    progress(done, total) {
      if (done >= total || done <= lastDone) return;
      if (lastDone < 0 || performance.now() - lastAt >= PROGRESS_INTERVAL_MS || done - lastDone >= total * PROGRESS_STEP) {
        // Not awaited: the loop must not wait for the main thread. The host never throws (it
        // guards the caller's callback), and after `close()` the promise just never settles.
        send(done, total).catch(() => {});
      }
    },
    async finish(total) {
      await send(total, total);
    },
    close() {
      port.close();
    },
  };

  try {
    if (await host.begin()) throw cancelledError();
  } catch (error) {
    port.close();
    throw error;
  }
  return channel;
}
