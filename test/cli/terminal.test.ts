import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI, liveDaemon, requireFreshBuild, scratch, template } from './helpers.js';
import { itWithTools, tool } from '../tools.js';

beforeAll(requireFreshBuild);

/** util-linux `script` runs a command on a pseudo-terminal; `-e` passes its exit code on. */

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe('imagefactory on a terminal', () => {
  itWithTools([tool('script')], 'draws progress as one line redrawn with carriage returns, then prints the id and exits 0', async () => {
    const daemon = await liveDaemon();
    const tdl = scratch().file('ok.tdl', template('ok'));
    const command = [process.execPath, CLI, 'base_image', tdl, '--url', daemon.url].map(quote).join(' ');
    const r = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const screen = r.stdout;
    const bars = screen.match(/\r\[[#.]{20}\] +\d+%  \d+:\d\d  [A-Z]+ [a-z_]+/g) ?? [];
    expect(bars.length).toBeGreaterThan(3);
    expect(screen).toContain('\x1b[K');
    expect(screen).toMatch(/\r\[#{20}\] 100%  \d+:\d\d  COMPLETE complete: Build complete\x1b\[K\r?\n/);
    // Everything between the submission line and the final newline is one redrawn line.
    const redrawn = screen.slice(screen.indexOf('submitted'), screen.search(/COMPLETE complete: Build complete/));
    expect(redrawn.split('\n')).toHaveLength(2);
    expect(screen).toMatch(/^[0-9a-f-]{36}\r?$/m);
  });
});
