import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'vitest';

/**
 * Tests that need a tool of the host. A missing tool is a failure that
 * names it, in CI and everywhere else, so that a missing install step in
 * `.ci/setup` can never pass as a skipped test (`bash .ci/setup` installs
 * every tool these tests name).
 */

/** A tool and how to tell it is there: a command that must exit 0, or a file that must exist. */
export type Tool = { name: string; command: string; args?: string[] } | { name: string; file: string } | { name: string; check: () => boolean };

export const tool = (command: string, args: string[] = ['--version']): Tool => ({ name: command, command, args });
export const file = (path: string, name = path): Tool => ({ name, file: path });
/** Something of the host other than a tool (an address, a device), named for the failure message. */
export const hostHas = (name: string, check: () => boolean): Tool => ({ name, check });

const cache = new Map<string, boolean>();

function present(t: Tool): boolean {
  if ('check' in t) return t.check();
  const key = 'file' in t ? `file:${t.file}` : `cmd:${t.command} ${(t.args ?? []).join(' ')}`;
  let ok = cache.get(key);
  if (ok === undefined) {
    ok = 'file' in t ? existsSync(t.file) : spawnSync(t.command, t.args ?? ['--version'], { stdio: 'ignore', timeout: 30_000 }).status === 0;
    cache.set(key, ok);
  }
  return ok;
}

export function missingTools(tools: Tool[]): string[] {
  return tools.filter((t) => !present(t)).map((t) => t.name);
}

function missingMessage(what: string, missing: string[]): string {
  return `${what} needs ${missing.join(', ')}, which ${missing.length > 1 ? 'are' : 'is'} not installed here (bash .ci/setup installs ${missing.length > 1 ? 'them' : 'it'})`;
}

/** `describe` for tests that need host tools; with one missing, a single test named after it fails. */
export function describeWithTools(tools: Tool[], name: string, body: () => void): void {
  const missing = missingTools(tools);
  if (!missing.length) return void describe(name, body);
  describe(name, () => {
    it(`has ${missing.join(', ')}`, () => {
      throw new Error(missingMessage(`"${name}"`, missing));
    });
  });
}

/** `it` for a test that needs host tools; with one missing, it fails naming it. */
export function itWithTools(tools: Tool[], name: string, body: () => unknown, timeout?: number): void {
  const missing = missingTools(tools);
  if (!missing.length) return void it(name, body as () => Promise<void>, timeout);
  it(name, () => {
    throw new Error(missingMessage(`"${name}"`, missing));
  });
}
