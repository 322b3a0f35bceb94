import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { confFile, SECRETS, tempDir } from './helpers.js';

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
    for (const d of ['(default /etc/imagefactory/imagefactory.conf)', '(default 8075)', '(default 127.0.0.1)', '(default 3600)', '(default m1.small)', '(default t2.micro)']) {
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

  it('serves HTTPS with OAuth when started with no TLS or OAuth option, and stops on SIGTERM with exit 0', async () => {
    const dir = tempDir();
    const config = confFile({ image_manager_args: { storage_path: join(dir, 'storage') }, imgdir: join(dir, 'images'), tmpdir: dir, media_cache: join(dir, 'media'), clients: { app: SECRETS[0] } });
    const child = spawn('node', [BIN, '--foreground', '--port', '0', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const end = Date.now() + 15_000;
      while (!/listening on https:\/\/127\.0\.0\.1:\d+/.test(out) && Date.now() < end && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
      expect(out, err).toMatch(/^imagefactoryd \S+ listening on https:\/\/127\.0\.0\.1:\d+\n$/);
      expect(err).toContain('two-legged OAuth 1.0a required; 1 consumer key(s) configured');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(out + err).not.toContain(SECRETS[0]);
  });

  it('replaces a pid file that names no daemon, and removes it again when the start fails', () => {
    const dir = tempDir();
    const pidFile = join(dir, 'd.pid');
    writeFileSync(pidFile, `${process.pid}\n`);
    // This test process is no imagefactoryd: a pid file naming it is stale and replaced; naming a live daemon it is refused.
    const r = daemon('--config', confFile({ image_manager_args: { storage_path: join(dir, 's') } }), '--foreground', '--pid_file', pidFile, '--ssl_pem', join(dir, 'absent.pem'));
    expect(r.code).toBe(2);
    expect(r.err).toContain('cannot read the TLS PEM file');
    expect(existsSync(pidFile)).toBe(false);
  });
});
