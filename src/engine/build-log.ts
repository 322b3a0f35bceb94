import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The build logs: one text file per image, appended synchronously so that a
 * crash loses nothing already logged, and followers told of each line.
 */
export class BuildLogs {
  private readonly followers = new Map<string, Set<(text: string) => void>>();

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  pathFor(id: string): string {
    return join(this.dir, `${id}.log`);
  }

  write(id: string, line: string): void {
    const text = `${new Date().toISOString()} ${line.replace(/\n+$/, '')}\n`;
    appendFileSync(this.pathFor(id), text);
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
