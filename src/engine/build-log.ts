import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The build logs: one text file per image, appended synchronously so that a
 * crash loses nothing already logged, and followers told of each line. A
 * write that fails (a full disk) never throws into the build: it is handed
 * to `onError`, which fails that build.
 */
export class BuildLogs {
  private readonly followers = new Map<string, Set<(text: string) => void>>();

  /** Told of a write that failed; the engine fails that build with `storage_full`. */
  onWriteError: (id: string, error: Error) => void = () => undefined;

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  pathFor(id: string): string {
    return join(this.dir, `${id}.log`);
  }

  write(id: string, line: string): void {
    const text = `${new Date().toISOString()} ${line.replace(/\n+$/, '')}\n`;
    try {
      appendFileSync(this.pathFor(id), text, { mode: 0o600 });
    } catch (e) {
      this.onWriteError(id, e as Error);
    }
    for (const f of this.followers.get(id) ?? []) f(text);
  }

  follow(id: string, onText: (text: string) => void): () => void {
    const set = this.followers.get(id) ?? new Set();
    set.add(onText);
    this.followers.set(id, set);
    return () => {
      set.delete(onText);
      if (set.size === 0) this.followers.delete(id);
    };
  }
}
