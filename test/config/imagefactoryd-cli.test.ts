import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { confFile, SECRETS } from './helpers.js';

/** The compiled daemon; `npm run build` (also run by `npm install` and `npm test`) must have run. */
const BIN = 'dist/src/cli/imagefactoryd.js';

function daemon(...args: string[]) {
  const r = spawnSync('node', [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('the imagefactoryd program', () => {
  beforeAll(() => {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` before these tests`);
  });

  it('--help lists all 17 options of the original with their defaults, and exits 0', () => {
    const help = execFileSync('node', [BIN, '--help'], { encoding: 'utf8' });
    const options = [
      '-h, --help',
      '-v, --version',
      '--verbose',
      '--debug',
      '--config',
      '--imgdir',
      '--timeout',
      '--tmpdir',
      '--plugins',
      '--ec2-32bit-util',
      '--ec2-64bit-util',
      '--foreground',
      '--port',
      '--address',
      '--no_ssl',
      '--ssl_pem',
      '--no_oauth',
    ];
    expect(options).toHaveLength(17);
    const lines = help.split('\n').map((l) => l.trim());
    for (const o of [...options, '--print-config']) expect(lines.some((l) => l.startsWith(`${o} `)), o).toBe(true);
    for (const d of ['(default /etc/imagefactory/imagefactory.conf)', '(default 8075)', '(default 0.0.0.0)', '(default 3600)', '(default m1.small)', '(default t2.micro)']) {
      expect(help).toContain(d);
    }
    expect(lines.find((l) => l.startsWith('--no_ssl '))).toContain('(default false)');
  });

  it('-v and --version print the version of package.json', () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(execFileSync('node', [BIN, '-v'], { encoding: 'utf8' })).toBe(`imagefactoryd ${version}\n`);
    expect(execFileSync('node', [BIN, '--version'], { encoding: 'utf8' })).toBe(`imagefactoryd ${version}\n`);
  });

  it('--print-config shows the file and the options over it, secrets redacted', () => {
    const path = confFile({ port: 1234, no_ssl: 0, imgdir: '/srv/images', clients: { app: SECRETS[0] } });
    const r = daemon('--print-config', '--no_ssl', '--port', '9000', '--config', path);
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.out) as Record<string, unknown>;
    expect(printed).toMatchObject({ port: 9000, no_ssl: true, imgdir: '/srv/images', no_oauth: false, clients: { app: '***' } });
    expect(r.out + r.err).not.toContain(SECRETS[0]);
  });

  it('a bad configuration exits 2 with every problem on stderr', () => {
    const r = daemon('--config', confFile({ timeout: 'abc', port: -1 }));
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain('key "timeout" must be a non-negative number, got "abc"');
    expect(r.err).toContain('key "port" must be an integer from 0 to 65535, got -1');
    expect(r.err.split('\n').filter(Boolean).every((l) => l.startsWith('imagefactoryd: '))).toBe(true);
  });

  it('a missing --config file and invalid JSON exit 2', () => {
    const missing = daemon('--config', '/nonexistent/imagefactory.conf');
    expect(missing.code).toBe(2);
    expect(missing.err).toBe('imagefactoryd: config file /nonexistent/imagefactory.conf does not exist\n');
    const json = daemon('--config', confFile('{"port": 1,}'));
    expect(json.code).toBe(2);
    expect(json.err).toMatch(/^imagefactoryd: .*invalid JSON at line 1, column 12: /);
  });

  it('usage errors exit 2 and point at --help', () => {
    const r = daemon('--no-ssl');
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown option --no-ssl (did you mean --no_ssl?)');
    expect(r.err).toContain('imagefactoryd --help');
  });

  it('unknown keys are warned about on stderr and do not stop the daemon', () => {
    const r = daemon('--print-config', '--config', confFile({ colour: 'blue' }));
    expect(r.code).toBe(0);
    expect(r.err).toContain('imagefactoryd: warning: ');
    expect(r.err).toContain('unknown key "colour" ignored');
  });

  it('refuses to serve plain HTTP unless --no_ssl is given, exiting 2', () => {
    const r = daemon('--config', confFile({}), '--no_oauth', '--port', '0');
    expect(r.code).toBe(2);
    expect(r.err).toContain('imagefactoryd: HTTPS is not available in this version yet; start with --no_ssl');
  });

  it('refuses to serve without authentication unless --no_oauth is given, exiting 2', () => {
    const r = daemon('--config', confFile({}), '--no_ssl', '--port', '0');
    expect(r.code).toBe(2);
    expect(r.err).toContain('imagefactoryd: OAuth is not available in this version yet; start with --no_oauth');
  });
});
