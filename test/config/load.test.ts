import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, CONFIG_KEYS, DEFAULT_CONFIG_PATH, defaultConfig, loadConfig, SCHEMA } from '../../src/config/index.js';
import { confFile, tempDir, thrown } from './helpers.js';

const absent = () => join(tempDir(), 'absent.conf');

describe('loading the configuration', () => {
  it('uses the original defaults when there is no file', () => {
    const { config, warnings, source } = loadConfig({ defaultPath: absent() });
    expect(source).toBeNull();
    expect(warnings).toEqual([]);
    expect(config).toEqual({
      debug: false,
      verbose: false,
      no_ssl: false,
      no_oauth: false,
      ssl_pem: null,
      imgdir: '/var/lib/imagefactory/images',
      tmpdir: '/tmp',
      timeout: 3600,
      plugins: '/etc/imagefactory/plugins.d',
      target_content: '/etc/imagefactory/target_content.xml',
      port: 8075,
      address: '127.0.0.1',
      metrics_port: null,
      foreground: false,
      pid_file: null,
      log_file: null,
      shutdown: 'checkpoint',
      shutdown_timeout: 60,
      'ec2-32bit-util': 'm1.small',
      'ec2-64bit-util': 't2.micro',
      ec2_ami_type: 'ebs',
      rhevm_image_format: 'qcow2',
      openstack_image_format: 'qcow2',
      clients: {},
      max_concurrent_local_sessions: 2,
      max_concurrent_ec2_sessions: 4,
      push_parallel_requests: 8,
      push_request_timeout: 60,
      push_timeout: 10800,
      image_manager: 'file',
      image_manager_args: { storage_path: '/var/lib/imagefactory/storage' },
      tdl_require_root_pw: false,
      jeos_config: [],
      max_queued_builds: 32,
      phase_timeouts: { preparing: 1800, installing: 1200, customizing: 1800, snapshotting: 1800 },
      inspect: false,
      hypervisor: 'auto',
      accel: 'auto',
      libvirt_uri: 'qemu:///system',
      install_stall_seconds: 300,
      package_cache: '/var/cache/imagefactory/packages',
      package_cache_max_mb: 2048,
      tree_cache: '/var/cache/imagefactory/trees',
      tree_cache_max_mb: 8192,
      media_cache: '/var/cache/imagefactory/media',
      media_cache_max_mb: 8192,
      installer_media_dir: null,
      file_url_dirs: [],
      content_fetch_max_mb: 64,
      content_fetch_timeout_seconds: 60,
      content_fetch_max_redirects: 5,
    });
  });

  it('reads /etc/imagefactory/imagefactory.conf when no file is chosen', () => {
    expect(DEFAULT_CONFIG_PATH).toBe('/etc/imagefactory/imagefactory.conf');
    const { source } = loadConfig();
    expect([null, DEFAULT_CONFIG_PATH]).toContain(source);
  });

  it('does not share the default objects between loads', () => {
    const a = loadConfig({ defaultPath: absent() }).config;
    a.clients['x'] = 'y';
    a.jeos_config.push('/x');
    a.image_manager_args.storage_path = '/elsewhere';
    expect(loadConfig({ defaultPath: absent() }).config).toEqual(defaultConfig());
    expect(SCHEMA.image_manager_args.default.storage_path).toBe('/var/lib/imagefactory/storage');
  });

  it('lets the file override every key it sets and keeps the defaults of the others', () => {
    const path = confFile({ imgdir: '/srv/images', timeout: 7200.5, port: 9999, clients: { app: 'pw' }, jeos_config: ['/etc/jeos.conf'] });
    const { config, source } = loadConfig({ configPath: path });
    expect(source).toBe(path);
    expect(config.imgdir).toBe('/srv/images');
    expect(config.timeout).toBe(7200.5);
    expect(config.port).toBe(9999);
    expect(config.clients).toEqual({ app: 'pw' });
    expect(config.jeos_config).toEqual(['/etc/jeos.conf']);
    expect(config.tmpdir).toBe('/tmp');
  });

  it('reads the default file when it exists and no --config is given', () => {
    const path = confFile({ port: 1234 });
    const { config, source } = loadConfig({ defaultPath: path });
    expect(source).toBe(path);
    expect(config.port).toBe(1234);
  });

  it('lets command-line flags override the file', () => {
    const path = confFile({ port: 9999, no_ssl: 0, address: '127.0.0.1', debug: 1 });
    const { config } = loadConfig({ configPath: path, flags: { port: 9000, no_ssl: true, debug: false } });
    expect(config.port).toBe(9000);
    expect(config.no_ssl).toBe(true);
    expect(config.debug).toBe(false);
    expect(config.address).toBe('127.0.0.1');
  });

  it('ignores flags that are undefined', () => {
    const path = confFile({ port: 9999 });
    expect(loadConfig({ configPath: path, flags: { port: undefined } }).config.port).toBe(9999);
  });

  it('accepts 0 and 1 for booleans, as the original files wrote them', () => {
    const path = confFile({ debug: 1, verbose: 0, no_ssl: 1, no_oauth: true, foreground: false, tdl_require_root_pw: 1 });
    const { config } = loadConfig({ configPath: path });
    expect([config.debug, config.verbose, config.no_ssl, config.no_oauth, config.foreground, config.tdl_require_root_pw]).toEqual([
      true,
      false,
      true,
      true,
      false,
      true,
    ]);
  });

  it('refuses other numbers and strings for booleans', () => {
    const e = thrown(() => loadConfig({ configPath: confFile({ debug: 2, no_ssl: 'yes' }) })) as ConfigError;
    expect(e.code).toBe('config_wrong_type');
    expect(e.problems.map((p) => p.key)).toEqual(['debug', 'no_ssl']);
    expect(e.message).toContain('key "debug" must be a boolean (true, false, 0 or 1), got 2');
  });

  it('merges image_manager_args over the default and keeps other properties', () => {
    const { config } = loadConfig({ configPath: confFile({ image_manager_args: { extra: 1 } }) });
    expect(config.image_manager_args).toEqual({ storage_path: '/var/lib/imagefactory/storage', extra: 1 });
    const own = loadConfig({ configPath: confFile({ image_manager_args: { storage_path: '/data' } }) }).config;
    expect(own.image_manager_args.storage_path).toBe('/data');
  });

  it('accepts a file that starts with a byte-order mark', () => {
    expect(loadConfig({ configPath: confFile('\uFEFF{"port": 1}') }).config.port).toBe(1);
  });

  it('accepts the shipped conf/imagefactory.conf without warnings', () => {
    const { config, warnings } = loadConfig({ configPath: 'conf/imagefactory.conf' });
    expect(warnings).toEqual([]);
    expect(config).toEqual(defaultConfig());
  });

  it('rejects a phase limit that is not a non-negative number, naming the phase', () => {
    const path = confFile({ phase_timeouts: { installing: -1 } });
    const e = thrown(() => loadConfig({ configPath: path })) as ConfigError;
    expect(e.code).toBe('config_wrong_type');
    expect(e.message).toContain('phase_timeouts.installing');
  });

  it('knows every key of the original by its exact spelling', () => {
    expect(CONFIG_KEYS).toContain('ec2-32bit-util');
    expect(CONFIG_KEYS).toContain('no_ssl');
    expect(CONFIG_KEYS).toHaveLength(51);
  });
});

describe('configuration problems', () => {
  it('a missing --config file is an error naming the path', () => {
    const path = absent();
    const e = thrown(() => loadConfig({ configPath: path })) as ConfigError;
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.code).toBe('config_missing');
    expect(e.message).toContain(path);
  });

  it('a file that cannot be read is config_unreadable', () => {
    const dir = tempDir();
    const e = thrown(() => loadConfig({ configPath: dir })) as ConfigError;
    expect(e.code).toBe('config_unreadable');
    expect(e.message).toContain(dir);
  });

  it('invalid JSON is config_invalid_json with the position and the parser message', () => {
    const path = confFile('{\n  "port": 8075,\n  "debug": tru\n}');
    const e = thrown(() => loadConfig({ configPath: path })) as ConfigError;
    expect(e.code).toBe('config_invalid_json');
    expect(e.message).toBe(`${path}: invalid JSON at line 3, column 15: Unexpected token '\\n'`);
  });

  it('a trailing comma and an unterminated file are reported with their line', () => {
    const comma = thrown(() => loadConfig({ configPath: confFile('{"port": 1,\n}') })) as ConfigError;
    expect(comma.message).toContain('line 2, column 1');
    const cut = thrown(() => loadConfig({ configPath: confFile('{"port": 1') })) as ConfigError;
    expect(cut.code).toBe('config_invalid_json');
    expect(cut.message).toContain('line 1, column 11');
    const empty = thrown(() => loadConfig({ configPath: confFile('') })) as ConfigError;
    expect(empty.message).toContain('Unexpected end of JSON input');
  });

  it('a file that is not a JSON object is config_wrong_type', () => {
    const e = thrown(() => loadConfig({ configPath: confFile('[1, 2]') })) as ConfigError;
    expect(e.code).toBe('config_wrong_type');
    expect(e.message).toContain('must be a JSON object, got an array');
  });

  it('reports every key with a wrong type, each with the key and the expected type', () => {
    const path = confFile({
      timeout: 'abc',
      port: 70000,
      imgdir: 5,
      max_concurrent_local_sessions: 0,
      ec2_ami_type: 'instance-store',
      jeos_config: ['/ok', ''],
      image_manager_args: { storage_path: 7 },
      ssl_pem: '',
      clients: [],
    });
    const e = thrown(() => loadConfig({ configPath: path })) as ConfigError;
    expect(e.code).toBe('config_wrong_type');
    expect(e.message.split('\n')).toEqual([
      `${path}: key "timeout" must be a non-negative number, got "abc"`,
      `${path}: key "port" must be an integer from 0 to 65535, got 70000`,
      `${path}: key "imgdir" must be a path (non-empty string), got 5`,
      `${path}: key "max_concurrent_local_sessions" must be a positive integer, got 0`,
      `${path}: key "ec2_ami_type" must be one of "ebs", "s3", got "instance-store"`,
      `${path}: key "jeos_config[1]" must be a path (non-empty string), got ""`,
      `${path}: key "image_manager_args.storage_path" must be a non-empty string, got 7`,
      `${path}: key "ssl_pem" must be a path (non-empty string) or null, got ""`,
      `${path}: key "clients" must be an object whose values are strings, got an array`,
    ]);
    expect(e.problems.map((p) => p.key)).toEqual([
      'timeout',
      'port',
      'imgdir',
      'max_concurrent_local_sessions',
      'ec2_ami_type',
      'jeos_config[1]',
      'image_manager_args.storage_path',
      'ssl_pem',
      'clients',
    ]);
  });

  it('reports wrong flag values by option name together with wrong file keys', () => {
    const path = confFile({ timeout: -1 });
    const e = thrown(() => loadConfig({ configPath: path, flags: { port: 1.5 } })) as ConfigError;
    expect(e.message.split('\n')).toEqual([
      `${path}: key "timeout" must be a non-negative number, got -1`,
      'option --port must be an integer from 0 to 65535, got 1.5',
    ]);
  });

  it('unknown keys are warnings, not errors, with a hint for near spellings', () => {
    const path = confFile({ port: 1, 'no-ssl': 1, ec2_32bit_util: 'x', color: 'blue' });
    const { config, warnings } = loadConfig({ configPath: path });
    expect(config.port).toBe(1);
    expect(config.no_ssl).toBe(false);
    expect(warnings).toEqual([
      `${path}: unknown key "no-ssl" ignored (did you mean "no_ssl"?)`,
      `${path}: unknown key "ec2_32bit_util" ignored (did you mean "ec2-32bit-util"?)`,
      `${path}: unknown key "color" ignored`,
    ]);
  });
});
