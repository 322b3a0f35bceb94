// Host tools a push runs (`qemu-img map`, `virsh`), from the main thread: in their own process
// group, killed as a group when the signal aborts, with their whole output kept (a sparse map of a
// fragmented image is long) up to a limit.
import { spawn } from 'node:child_process';
import { cancelledError, ProviderError } from './errors.js';

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ToolOptions {
  signal?: AbortSignal;
  /** Fed to the tool's standard input. */
  input?: string;
  /** Output kept at most (each stream); default 64 MiB. */
  maxOutput?: number;
}

const KILL_GRACE_MS = 2000;

export function runTool(command: string, args: string[], options: ToolOptions = {}): Promise<ToolResult> {
  const { signal } = options;
  const max = options.maxOutput ?? 64 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelledError(command));
    const child = spawn(command, args, { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outSize = 0;
    let errSize = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      if ((outSize += chunk.length) <= max) out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if ((errSize += chunk.length) <= max) err.push(chunk);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (error: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new ProviderError('tool_failed', error.code === 'ENOENT' ? `${command} is not installed` : `${command} could not be started: ${error.message}`, { command }));
    });
    child.once('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      clearTimeout(killTimer);
      killGroup(child.pid, 'SIGKILL');
      if (signal?.aborted) return reject(cancelledError(command));
      if (outSize > max) return reject(new ProviderError('tool_failed', `${command} wrote more than ${max} bytes`, { command }));
      resolve({ code: code ?? (sig ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** Runs a tool and throws `tool_failed` with the end of its stderr unless it exits 0. */
export async function runToolChecked(command: string, args: string[], options: ToolOptions = {}): Promise<ToolResult> {
  const result = await runTool(command, args, options);
  if (result.code !== 0) {
    const tail = result.stderr.trim().split('\n').slice(-3).join(' / ');
    throw new ProviderError('tool_failed', `${command} ${args[0] ?? ''} exited with status ${result.code}${tail ? `: ${tail}` : ''}`, { command, code: result.code });
  }
  return result;
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}
