import { createConnection, type Socket } from 'node:net';

/** A command the QEMU Machine Protocol refused: `class` is QMP's error class (`GenericError`, `CommandNotFound`…). */
export class QmpError extends Error {
  constructor(
    readonly errorClass: string,
    message: string,
  ) {
    super(message);
    this.name = 'QmpError';
  }
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

const COMMAND_TIMEOUT_MS = 10_000;

/**
 * A minimal QMP client over a unix socket: JSON objects one a line, the
 * greeting, `qmp_capabilities`, then commands matched to replies by `id`.
 * Asynchronous events are passed to `onEvent` and otherwise ignored.
 */
export class QmpClient {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closed = false;
  onEvent: ((event: { event: string; data?: unknown }) => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('close', () => this.fail(new Error('QMP connection closed')));
    socket.on('error', (err) => this.fail(err));
  }

  /** Connects, reads the greeting and leaves capabilities negotiation mode. */
  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection(path);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`QMP socket ${path} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const client = new QmpClient(socket);
    try {
      await client.greeting(timeoutMs);
      await client.execute('qmp_capabilities');
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  private greetingWaiter: { resolve(): void; reject(e: Error): void } | undefined;
  private greeted = false;

  private greeting(timeoutMs: number): Promise<void> {
    if (this.greeted) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no QMP greeting')), timeoutMs);
      this.greetingWaiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  /** Runs one command; resolves with its `return` value, rejects with a `QmpError` on an `error` reply. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = COMMAND_TIMEOUT_MS): Promise<T> {
    if (this.closed) return Promise.reject(new Error('QMP connection closed'));
    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QMP command ${command} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.fail(new Error('QMP connection closed'));
    this.socket.destroy();
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      this.dispatch(msg);
    }
  }

  private dispatch(msg: Record<string, unknown>): void {
    if ('QMP' in msg) {
      this.greeted = true;
      this.greetingWaiter?.resolve();
      return;
    }
    if (typeof msg['event'] === 'string') {
      this.onEvent?.({ event: msg['event'], data: msg['data'] });
      return;
    }
    const id = typeof msg['id'] === 'string' ? msg['id'] : undefined;
    const waiter = id === undefined ? undefined : this.pending.get(id);
    if (!waiter || id === undefined) return;
    this.pending.delete(id);
    clearTimeout(waiter.timer);
    const error = msg['error'] as { class?: string; desc?: string } | undefined;
    if (error) waiter.reject(new QmpError(error.class ?? 'GenericError', error.desc ?? 'QMP error'));
    else waiter.resolve(msg['return']);
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.greetingWaiter?.reject(err);
    for (const [id, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(err);
      this.pending.delete(id);
    }
  }
}
