import { spawn } from 'node:child_process';
import type { RunResult, StepContext } from '../plugin.js';
import { MediaError } from './errors.js';

/** How media code runs a program: a build passes its `StepContext.run` (process group, build log, abort). */
export type RunTool = StepContext['run'];

const TAIL = 16 * 1024;

/**
 * A runner for use outside a build (tests, tools): spawns the program
 * directly, collects its output, and kills it when `signal` aborts (the
 * promise then rejects with an `AbortError`, as a build's runner does).
 */
export function localRunner(signal?: AbortSignal): RunTool {
  return (command, args, options) =>
    new Promise<RunResult>((resolve, reject) => {
      if (signal?.aborted) {
        const error = new Error(`${command} was not started: the work was aborted`);
        error.name = 'AbortError';
        return reject(error);
      }
      const child = spawn(command, args, {
        cwd: options?.cwd,
        env: { ...process.env, ...options?.env },
        stdio: ['pipe', 'pipe', 'pipe'],
        ...(signal ? { signal } : {}),
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout = (stdout + chunk.toString('utf8')).slice(-TAIL)));
      child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-TAIL)));
      child.stdin.on('error', () => {});
      child.stdin.end(options?.input ?? '');
      child.on('error', (err) => reject(err));
      child.on('close', (code, sig) => resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr }));
    });
}

/** Runs a tool and throws `tool_failed` with the end of its stderr unless it exits 0. */
export async function runChecked(run: RunTool, command: string, args: string[], options?: { cwd?: string }): Promise<RunResult> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    const tail = result.stderr.trim().split('\n').slice(-5).join('\n');
    throw new MediaError('tool_failed', `${command} exited with status ${result.code}${tail ? `: ${tail}` : ''}`, { command, args, code: result.code });
  }
  return result;
}
