/** conf/imagefactoryd.service: what systemd makes of it, and that it stops the daemon the way the daemon stops builds. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCHEMA } from '../../src/config/index.js';
import { STOP_GRACE_MS } from '../../src/daemon/serve.js';
import { PROJECT_ROOT } from '../../src/version.js';
import { itWithTools, tool } from '../tools.js';
import { DAEMON_BIN } from './live.js';

const UNIT = readFileSync(join(PROJECT_ROOT, 'conf', 'imagefactoryd.service'), 'utf8');

/** `Key=value` of the unit's [Service] section. */
function service(): Map<string, string> {
  const section = UNIT.split(/^\[/m).find((s) => s.startsWith('Service]'))!;
  return new Map(
    section
      .split('\n')
      .filter((l) => /^[A-Za-z]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]),
  );
}

describe('conf/imagefactoryd.service', () => {
  it('runs the daemon in the foreground, reloads with SIGHUP, signals the daemon alone, and waits longer than the daemon’s own stop bound', () => {
    const s = service();
    expect(s.get('Type')).toBe('exec');
    expect(s.get('ExecStart')).toMatch(/\/imagefactoryd --foreground --config \/etc\/imagefactory\/imagefactory\.conf$/);
    expect(s.get('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(s.get('KillSignal')).toBe('SIGTERM');
    // control-group would SIGTERM the guests together with the daemon, before it could stop them in order.
    expect(s.get('KillMode')).toBe('mixed');
    const bound = (SCHEMA.shutdown_timeout.default as number) + STOP_GRACE_MS / 1000;
    expect(Number(s.get('TimeoutStopSec'))).toBeGreaterThan(bound);
  });

  itWithTools([tool('systemd-analyze', ['--version'])], 'passes systemd-analyze verify (with ExecStart pointing at the built daemon)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'if-unit-'));
    try {
      const unit = join(dir, 'imagefactoryd.service');
      writeFileSync(unit, UNIT.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath} ${DAEMON_BIN}`));
      const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
      const ours = (r.stdout + r.stderr).split('\n').filter((l) => l.includes('imagefactoryd.service'));
      expect(ours).toEqual([]);
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
