import { EXIT, UsageError } from '../client/exit.js';
import { ClientError } from '../client/http.js';
import type { Io } from './context.js';

/** Runs one command and turns whatever it threw into a message on stderr and an exit code. */
export async function runCommand(command: string, io: Io, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    return reportError(command, io, e);
  }
}

export function reportError(command: string | undefined, io: Io, e: unknown): number {
  if (e instanceof UsageError) {
    const name = e.command ?? command;
    io.err.write(`imagefactory: ${e.message}\nRun \`imagefactory ${name ? `${name} ` : ''}--help\` for usage.\n`);
    return EXIT.usage;
  }
  if (e instanceof ClientError) {
    if (e.code === 'unreachable') {
      io.err.write(`imagefactory: ${e.message}\n`);
      return EXIT.unreachable;
    }
    io.err.write(`imagefactory: ${e.status !== undefined ? `${e.code}: ` : ''}${e.message}\n`);
    return EXIT.failed;
  }
  io.err.write(`imagefactory: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return EXIT.failed;
}
