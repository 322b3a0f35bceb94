import { describe, expect, it, vi } from 'vitest';
import { ConfigError, DAEMON_OPTIONS, daemonHelp, parseDaemonArgs } from '../../src/config/index.js';
import { thrown } from './helpers.js';

const run = (...argv: string[]) => {
  const r = parseDaemonArgs(argv);
  if (r.kind !== 'run') throw new Error(`expected a run, got ${r.kind}`);
  return r;
};
const usage = (...argv: string[]) => thrown(() => parseDaemonArgs(argv)) as ConfigError;

describe('daemon options', () => {
  it('without options nothing is overridden and the default file is optional', () => {
    expect(run()).toEqual({ kind: 'run', configPath: undefined, printConfig: false, flags: {} });
  });

  it('--no_ssl and --no_oauth with an underscore are booleans, not mri negations', () => {
    expect(run('--no_ssl', '--no_oauth').flags).toEqual({ no_ssl: true, no_oauth: true });
  });

  it('a boolean option can be switched off with =false, overriding the file', () => {
    expect(run('--no_ssl=false').flags).toEqual({ no_ssl: false });
  });

  it('--no-ssl with a dash is refused with a hint at the underscore spelling', () => {
    const e = usage('--no-ssl');
    expect(e.code).toBe('usage_invalid');
    expect(e.message).toBe('unknown option --no-ssl (did you mean --no_ssl?)');
    expect(usage('--no-oauth').message).toContain('did you mean --no_oauth?');
  });

  it('unknown options are usage errors', () => {
    expect(usage('--colour').message).toBe('unknown option --colour');
    expect(usage('-x').code).toBe('usage_invalid');
  });

  it('values become typed overrides of the matching keys', () => {
    const r = run(
      '--verbose',
      '--debug',
      '--imgdir',
      '/srv/img',
      '--timeout=90',
      '--tmpdir',
      '/var/tmp',
      '--plugins',
      '/opt/plugins',
      '--ec2-32bit-util',
      'm1.medium',
      '--ec2-64bit-util',
      'm5.large',
      '--foreground',
      '--port',
      '9000',
      '--address',
      '127.0.0.1',
      '--ssl_pem',
      '/etc/pki/daemon.pem',
      '--pid_file',
      '/run/if.pid',
      '--log_file',
      '/var/log/if.log',
    );
    expect(r.flags).toEqual({
      verbose: true,
      debug: true,
      imgdir: '/srv/img',
      timeout: 90,
      tmpdir: '/var/tmp',
      plugins: '/opt/plugins',
      'ec2-32bit-util': 'm1.medium',
      'ec2-64bit-util': 'm5.large',
      foreground: true,
      port: 9000,
      address: '127.0.0.1',
      ssl_pem: '/etc/pki/daemon.pem',
      pid_file: '/run/if.pid',
      log_file: '/var/log/if.log',
    });
  });

  it('path options keep numeric-looking values as strings', () => {
    expect(run('--imgdir', '123', '--address', '10').flags).toEqual({ imgdir: '123', address: '10' });
  });

  it('--config and --print-config are read, not turned into config keys', () => {
    const r = run('--config', '/tmp/x.conf', '--print-config');
    expect(r.configPath).toBe('/tmp/x.conf');
    expect(r.printConfig).toBe(true);
    expect(r.flags).toEqual({});
  });

  it('the last of repeated options wins', () => {
    expect(run('--port', '1', '--port', '2').flags.port).toBe(2);
  });

  it('an option without its value is a usage error', () => {
    expect(usage('--imgdir').message).toBe('option --imgdir needs a value');
    expect(usage('--config', '--debug').message).toBe('option --config needs a value');
  });

  it('stray arguments are refused, including values given to boolean options', () => {
    expect(usage('extra').message).toContain('unexpected argument "extra"');
    expect(usage('--debug', '1').code).toBe('usage_invalid');
  });

  it('every wrong value is reported together, by option name', () => {
    const e = usage('--port', 'abc', '--timeout=-5', '--address=');
    expect(e.code).toBe('usage_invalid'); // the empty value is found first
    const wrong = usage('--port', 'abc', '--timeout=-5');
    expect(wrong.code).toBe('config_wrong_type');
    expect(wrong.message.split('\n')).toEqual([
      'option --timeout must be a non-negative number, got -5',
      'option --port must be an integer from 0 to 65535, got "abc"',
    ]);
  });

  it('-h/--help and -v/--version are recognized without printing anything', () => {
    const log = vi.spyOn(console, 'log');
    try {
      expect(parseDaemonArgs(['-h'])).toEqual({ kind: 'help' });
      expect(parseDaemonArgs(['--help', '--port', '1'])).toEqual({ kind: 'help' });
      expect(parseDaemonArgs(['-v'])).toEqual({ kind: 'version' });
      expect(parseDaemonArgs(['--version'])).toEqual({ kind: 'version' });
      expect(log).not.toHaveBeenCalled();
    } finally {
      log.mockRestore();
    }
  });

  it('the help lists every option of the original with its default', () => {
    const help = daemonHelp();
    for (const [flag, shown] of [
      ['-h, --help', undefined],
      ['-v, --version', undefined],
      ['--verbose', 'false'],
      ['--debug', 'false'],
      ['--config', '/etc/imagefactory/imagefactory.conf'],
      ['--imgdir', '/var/lib/imagefactory/images'],
      ['--timeout', '3600'],
      ['--tmpdir', '/tmp'],
      ['--plugins', '/etc/imagefactory/plugins.d'],
      ['--ec2-32bit-util', 'm1.small'],
      ['--ec2-64bit-util', 't2.micro'],
      ['--foreground', 'false'],
      ['--port', '8075'],
      ['--address', '127.0.0.1'],
      ['--pid_file', undefined],
      ['--log_file', undefined],
      ['--no_ssl', 'false'],
      ['--ssl_pem', undefined],
      ['--no_oauth', 'false'],
      ['--print-config', 'false'],
    ] as const) {
      const line = help.split('\n').find((l) => l.trim().startsWith(`${flag} `));
      expect(line, flag).toBeDefined();
      if (shown !== undefined) expect(line, flag).toContain(`(default ${shown})`);
    }
    expect(help).toContain('transient self-signed certificate');
    // The original's 15 options, --inspect, --print-config, and the pid and log files of daemon mode.
    expect(DAEMON_OPTIONS).toHaveLength(19);
  });
});
