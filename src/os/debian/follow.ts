import { open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';

/** The longest line passed on, in characters: a guest printing without newlines must not grow the host's memory without bound. */
export const MAX_LINE_CHARS = 64 * 1024;

/**
 * Follows a file a guest writes to (its serial channel), calling `onLine`
 * for each complete line as it appears, so the build log and progress move
 * while the guest works. `stop` reads what is left, including a last line
 * without its newline. A line longer than `maxLineChars` is passed on in
 * pieces of that length.
 */
export function followChannel(path: string, onLine: (line: string) => void, intervalMs = 500, maxLineChars = MAX_LINE_CHARS): { stop(): Promise<void> } {
  let offset = 0;
  let partial = '';
  const decoder = new StringDecoder('utf8');
  let reading: Promise<void> = Promise.resolve();
  const read = async (final: boolean) => {
    const fh = await open(path, 'r').catch(() => null);
    if (!fh) return;
    try {
      for (;;) {
        const buf = Buffer.alloc(64 * 1024);
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        if (!bytesRead) break;
        offset += bytesRead;
        partial += decoder.write(buf.subarray(0, bytesRead));
        const lines = partial.split(/\r?\n/);
        partial = lines.pop()!;
        for (const line of lines) for (let i = 0; i === 0 || i < line.length; i += maxLineChars) onLine(line.slice(i, i + maxLineChars));
        while (partial.length > maxLineChars) {
          onLine(partial.slice(0, maxLineChars));
          partial = partial.slice(maxLineChars);
        }
      }
      if (final) {
        const last = (partial + decoder.end()).replace(/\r$/, '');
        partial = '';
        if (last) onLine(last);
      }
    } finally {
      await fh.close();
    }
  };
  const timer = setInterval(() => {
    reading = reading.then(() => read(false)).catch(() => undefined);
  }, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await reading;
      await read(true).catch(() => undefined);
    },
  };
}
