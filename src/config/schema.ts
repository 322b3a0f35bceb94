/**
 * The table of every configuration key: type, default, meaning, whether it holds secrets, and the
 * daemon flag that overrides it. Spellings are exactly those of the original Image Factory.
 */

export interface ImageManagerArgs {
  storage_path: string;
  [name: string]: unknown;
}

export interface Config {
  debug: boolean;
  verbose: boolean;
  no_ssl: boolean;
  no_oauth: boolean;
  ssl_pem: string | null;
  imgdir: string;
  tmpdir: string;
  timeout: number;
  plugins: string;
  target_content: string;
  port: number;
  address: string;
  /** A loopback-only port for GET /metrics without OAuth, or null (metrics only on the API port, behind OAuth). */
  metrics_port: number | null;
  foreground: boolean;
  pid_file: string | null;
  log_file: string | null;
  shutdown: 'checkpoint' | 'cancel';
  shutdown_timeout: number;
  'ec2-32bit-util': string;
  'ec2-64bit-util': string;
  ec2_ami_type: 'ebs' | 's3';
  rhevm_image_format: 'qcow2' | 'raw';
  openstack_image_format: 'qcow2' | 'raw';
  clients: Record<string, string>;
  max_concurrent_local_sessions: number;
  max_concurrent_ec2_sessions: number;
  push_parallel_requests: number;
  push_request_timeout: number;
  push_timeout: number;
  image_manager: 'file';
  image_manager_args: ImageManagerArgs;
  tdl_require_root_pw: boolean;
  jeos_config: string[];
  max_queued_builds: number;
  phase_timeouts: Record<string, number>;
  hypervisor: 'auto' | 'libvirt' | 'qemu';
  accel: 'auto' | 'kvm' | 'tcg';
  libvirt_uri: string;
  install_stall_seconds: number;
  package_cache: string | null;
  package_cache_max_mb: number;
  tree_cache: string | null;
  tree_cache_max_mb: number;
  media_cache: string;
  media_cache_max_mb: number;
  installer_media_dir: string | null;
  file_url_dirs: string[];
  content_fetch_max_mb: number;
  content_fetch_timeout_seconds: number;
  content_fetch_max_redirects: number;
  /** false, true (port 8080) or the port of the Stately inspector relay. */
  inspect: boolean | number;
}

export type ConfigKey = keyof Config;

/** The shapes a value can have; `validate.ts` checks them and `describeType` words them. */
export type ValueType =
  /** true/false, or 0/1 as the original's files wrote them. */
  | { kind: 'boolean' }
  | { kind: 'number'; integer: boolean; min: number; max?: number; nullable?: boolean }
  | { kind: 'string' }
  | { kind: 'path'; nullable: boolean }
  | { kind: 'enum'; values: readonly string[] }
  /** An object whose values are all strings (`clients`). */
  | { kind: 'string-map' }
  /** An object whose values are non-negative numbers (`phase_timeouts`). */
  | { kind: 'number-map' }
  | { kind: 'path-list' }
  /** An object merged over the default; the listed properties must be non-empty strings. */
  | { kind: 'object'; strings: readonly string[] }
  /** false/true, or a TCP port that also means true (`inspect`). */
  | { kind: 'boolean-or-port' };

/**
 * `map-values`: every value of the map is a secret (the names are not).
 * `matching-names`: properties whose name looks like a password, secret, key or token are secrets.
 */
export type SecretKind = 'map-values' | 'matching-names';

export interface KeySpec<K extends ConfigKey = ConfigKey> {
  type: ValueType;
  default: Config[K];
  description: string;
  secret?: SecretKind;
  /** The `imagefactoryd` option that overrides the key (`--port`), if any. */
  flag?: string;
}

export const DEFAULT_CONFIG_PATH = '/etc/imagefactory/imagefactory.conf';

const BOOLEAN: ValueType = { kind: 'boolean' };
const PATH: ValueType = { kind: 'path', nullable: false };
const STRING: ValueType = { kind: 'string' };
const DISK_FORMAT: ValueType = { kind: 'enum', values: ['qcow2', 'raw'] };

/** Every key, in the order of `conf/imagefactory.conf` and `docs/configuration.md`. */
export const SCHEMA: { readonly [K in ConfigKey]: KeySpec<K> } = {
  debug: { type: BOOLEAN, default: false, flag: '--debug', description: 'Log everything, for debugging (log level `trace`).' },
  verbose: { type: BOOLEAN, default: false, flag: '--verbose', description: 'Also log every request and every build transition (log level `debug`; the default is `info`).' },
  no_ssl: { type: BOOLEAN, default: false, flag: '--no_ssl', description: 'Serve the REST API over plain HTTP instead of HTTPS.' },
  no_oauth: {
    type: BOOLEAN,
    default: false,
    flag: '--no_oauth',
    description: 'Do not require two-legged OAuth 1.0a signatures on REST requests.',
  },
  ssl_pem: {
    type: { kind: 'path', nullable: true },
    default: null,
    flag: '--ssl_pem',
    description: 'PEM file with the HTTPS certificate and private key; null generates a transient self-signed certificate at start-up.',
  },
  imgdir: { type: PATH, default: '/var/lib/imagefactory/images', flag: '--imgdir', description: 'Directory where image files are built.' },
  tmpdir: { type: PATH, default: '/tmp', flag: '--tmpdir', description: 'Directory for temporary files.' },
  timeout: {
    type: { kind: 'number', integer: false, min: 0 },
    default: 3600,
    flag: '--timeout',
    description: 'Time limit of an image build, in seconds.',
  },
  plugins: { type: PATH, default: '/etc/imagefactory/plugins.d', flag: '--plugins', description: 'Directory of plugin `.info` files.' },
  target_content: {
    type: PATH,
    default: '/etc/imagefactory/target_content.xml',
    description:
      'The target content file: per target (and optionally OS name, version and arch) the packages and repositories a target needs, merged into a template built for that target, or installed by the target build (see docs/clouds.md). A missing file means no target content.',
  },
  port: {
    type: { kind: 'number', integer: true, min: 0, max: 65535 },
    default: 8075,
    flag: '--port',
    description: 'TCP port of the REST API (0 picks a free port).',
  },
  address: {
    type: STRING,
    default: '127.0.0.1',
    flag: '--address',
    description: 'Address (interface) the REST API listens on; loopback by default, `0.0.0.0` for every interface (logged as a warning without OAuth).',
  },
  metrics_port: {
    type: { kind: 'number', integer: true, min: 0, max: 65535, nullable: true },
    default: null,
    description:
      'A second port, on 127.0.0.1 only and over plain HTTP without OAuth, that serves `GET /metrics` for a local Prometheus (0 picks a free port); `null` for none: metrics are then only on the API port, behind OAuth.',
  },
  foreground: {
    type: BOOLEAN,
    default: false,
    flag: '--foreground',
    description: 'Stay in the foreground (logs on stderr, no pid file unless `pid_file` is set); without it the daemon detaches, writes its pid file and logs to `log_file`.',
  },
  pid_file: {
    type: { kind: 'path', nullable: true },
    default: null,
    flag: '--pid_file',
    description:
      'File holding the running daemon\'s pid; a second daemon on the same file refuses to start. `null`: `/run/imagefactoryd.pid` when the daemon detaches, none in the foreground.',
  },
  log_file: {
    type: { kind: 'path', nullable: true },
    default: null,
    flag: '--log_file',
    description:
      'File the daemon logs to (JSON lines, reopened on SIGHUP for log rotation). `null`: `/var/log/imagefactory/imagefactoryd.log` when the daemon detaches, stderr in the foreground.',
  },
  shutdown: {
    type: { kind: 'enum', values: ['checkpoint', 'cancel'] },
    default: 'checkpoint',
    description:
      'What SIGTERM and SIGINT do to running builds: `checkpoint` stops them where they are (their guests are destroyed) and resumes them at the next start; `cancel` cancels each one (undone, CANCELLED) and waits for it to be final.',
  },
  shutdown_timeout: {
    type: { kind: 'number', integer: false, min: 1 },
    default: 60,
    description:
      'Seconds the daemon gives running builds to stop on SIGTERM/SIGINT; builds not final by then are checkpointed, and the daemon exits with code 1 if even that does not finish in 10 more seconds.',
  },
  'ec2-32bit-util': {
    type: STRING,
    default: 'm1.small',
    flag: '--ec2-32bit-util',
    description: 'EC2 instance type of the utility instance for 32-bit builds.',
  },
  'ec2-64bit-util': {
    type: STRING,
    default: 't2.micro',
    flag: '--ec2-64bit-util',
    description: 'EC2 instance type of the utility instance for 64-bit builds.',
  },
  ec2_ami_type: { type: { kind: 'enum', values: ['ebs', 's3'] }, default: 'ebs', description: 'Kind of AMI registered on EC2: EBS-backed or S3 (instance-store).' },
  rhevm_image_format: { type: DISK_FORMAT, default: 'qcow2', description: 'Disk format of images pushed to RHEV-M.' },
  openstack_image_format: { type: DISK_FORMAT, default: 'qcow2', description: 'Disk format of images pushed to OpenStack.' },
  clients: {
    type: { kind: 'string-map' },
    default: {},
    secret: 'map-values',
    description: 'OAuth consumers: a map of consumer key to consumer secret. The secrets are never printed or logged.',
  },
  max_concurrent_local_sessions: {
    type: { kind: 'number', integer: true, min: 1 },
    default: 2,
    description: 'How many builds may use the local hypervisor at once.',
  },
  max_concurrent_ec2_sessions: {
    type: { kind: 'number', integer: true, min: 1 },
    default: 4,
    description: 'How many EC2 utility instances may run at once.',
  },
  push_parallel_requests: {
    type: { kind: 'number', integer: true, min: 1 },
    default: 8,
    description: 'Requests a provider push keeps in flight at once (EBS snapshot blocks).',
  },
  push_request_timeout: {
    type: { kind: 'number', integer: false, min: 1 },
    default: 60,
    description: 'Time limit in seconds of one request of a provider push; a request that overruns it is retried, like throttling and 5xx answers.',
  },
  push_timeout: {
    type: { kind: 'number', integer: false, min: 1 },
    default: 10800,
    description: 'Time limit in seconds of a whole provider push, retries included; beyond it the push fails with `timeout` and removes what it created.',
  },
  image_manager: { type: { kind: 'enum', values: ['file'] }, default: 'file', description: 'Where image records are stored.' },
  image_manager_args: {
    type: { kind: 'object', strings: ['storage_path'] },
    default: { storage_path: '/var/lib/imagefactory/storage' },
    secret: 'matching-names',
    description:
      'Arguments of the image manager, merged over the default; `storage_path` is the directory of image records and bodies. Properties named like a password, secret, key or token are never printed.',
  },
  tdl_require_root_pw: { type: BOOLEAN, default: false, description: 'Refuse templates that do not set a root password.' },
  jeos_config: {
    type: { kind: 'path-list' },
    default: [],
    description: 'Files listing prebuilt base machine images, one a line: `target:provider:os:version:arch:image_id[:user[:cmd_prefix]]`.',
  },
  max_queued_builds: {
    type: { kind: 'number', integer: true, min: 1 },
    default: 32,
    description: 'How many builds may wait for a slot; beyond it submissions are refused with 503 until the queue drains.',
  },
  phase_timeouts: {
    type: { kind: 'number-map' },
    default: { preparing: 1800, installing: 1200, customizing: 1800, snapshotting: 1800 },
    description:
      'Time limit in seconds of each build phase (machine state), on top of the whole-build `timeout`; a phase not listed has no limit of its own. A build that overruns ends FAILED with code `timeout`.',
  },
  hypervisor: {
    type: { kind: 'enum', values: ['auto', 'libvirt', 'qemu'] },
    default: 'auto',
    description:
      'How guests are run: `libvirt` (transient domains through libvirtd at `libvirt_uri`), `qemu` (qemu-system processes spawned directly, driven over QMP), or `auto`: libvirt when its URI answers within 2 s at start-up, qemu otherwise.',
  },
  accel: {
    type: { kind: 'enum', values: ['auto', 'kvm', 'tcg'] },
    default: 'auto',
    description:
      'CPU acceleration of guests: `kvm`, `tcg` (emulation, slow but works everywhere), or `auto`: KVM only when /dev/kvm opens read-write and the CPU flags show vmx or svm, TCG otherwise.',
  },
  libvirt_uri: { type: STRING, default: 'qemu:///system', description: 'libvirt connection URI used by the libvirt hypervisor driver.' },
  install_stall_seconds: {
    type: { kind: 'number', integer: true, min: 1 },
    default: 300,
    description:
      'Seconds without disk or network activity after which a guest install is stopped as stalled (code `install_stalled`, with a screenshot and the console tail), as Oz does.',
  },
  package_cache: {
    type: { kind: 'path', nullable: true },
    default: '/var/cache/imagefactory/packages',
    description:
      'Directory of `.deb` packages shared by Debian/Ubuntu bootstrap builds, so that a rebuild downloads nothing it already has; `null` for none.',
  },
  package_cache_max_mb: {
    type: { kind: 'number', integer: true, min: 0 },
    default: 2048,
    description: 'Size bound of `package_cache` in MiB: after each bootstrap, the least recently used packages are removed until the cache fits.',
  },
  tree_cache: {
    type: { kind: 'path', nullable: true },
    default: '/var/cache/imagefactory/trees',
    description:
      'Directory of bootstrapped root trees kept between Debian/Ubuntu builds, keyed by the bootstrap command and the date of each repository\'s signed Release file: a template that differs only in files, commands or root password skips mmdebstrap; with each tree, the booted guests of its first customization boots (boot checkpoints), so a template that differs only in its commands skips the boot too; `null` for none.',
  },
  tree_cache_max_mb: {
    type: { kind: 'number', integer: true, min: 0 },
    default: 8192,
    description: 'Size bound of `tree_cache` in MiB: after a tree is added, the least recently used trees are removed until the cache fits (never one a build is copying).',
  },
  media_cache: {
    type: PATH,
    default: '/var/cache/imagefactory/media',
    description: 'Directory of downloaded install media (installer kernels and initrds, ISOs), keyed by URL and expected checksum, shared by builds.',
  },
  media_cache_max_mb: {
    type: { kind: 'number', integer: true, min: 0 },
    default: 8192,
    description: 'Size bound of `media_cache` in MiB: the least recently used media are evicted beyond it (media in use by a build are kept).',
  },
  installer_media_dir: {
    type: { kind: 'path', nullable: true },
    default: null,
    description:
      'A local directory standing in for mirrors: `http://HOST/PATH` is looked up as `DIR/HOST/PATH` first (e.g. the contents of Debian\'s `debian-installer-12-netboot-amd64` package laid out as the mirror), `null` for none.',
  },
  file_url_dirs: {
    type: { kind: 'path-list' },
    default: [],
    description:
      'Absolute directories of the build host whose files a template may name in a `file:` URL: url contents (`<file type="url">file:///…</file>`, url commands) and install media (`<iso>`, its checksum, an install `<url>`, ISO extras); none by default, so no template reads a host file. Refused templates fail validation with `file_url_forbidden`.',
  },
  content_fetch_max_mb: {
    type: { kind: 'number', integer: true, min: 1 },
    default: 64,
    description: 'Largest `url` content (of a template file or command) fetched over http(s), in MiB; a bigger one fails the build with `content_too_large`.',
  },
  content_fetch_timeout_seconds: {
    type: { kind: 'number', integer: true, min: 1 },
    default: 60,
    description: 'Time limit of fetching one `url` content, headers and body, redirects included; beyond it the build fails with `content_timeout`.',
  },
  content_fetch_max_redirects: {
    type: { kind: 'number', integer: true, min: 0 },
    default: 5,
    description: 'Redirects followed when fetching a `url` content (each to http or https only); one more fails the build with `content_redirects`.',
  },
  inspect: {
    type: { kind: 'boolean-or-port' },
    default: false,
    flag: '--inspect',
    description:
      "Relay every build machine to Stately's inspector (@statelyai/inspect) over a WebSocket on 127.0.0.1: `true` on port 8080 (Stately's default), a number on that port (0 picks a free one). See docs/inspector.md.",
  },
};

/** Every key, in table order. */
export const CONFIG_KEYS = Object.keys(SCHEMA) as ConfigKey[];

export function isConfigKey(name: string): name is ConfigKey {
  return Object.prototype.hasOwnProperty.call(SCHEMA, name);
}

/** A fresh copy of the defaults (objects and lists are not shared with the table). */
export function defaultConfig(): Config {
  const config = {} as Record<ConfigKey, unknown>;
  for (const key of CONFIG_KEYS) config[key] = structuredClone(SCHEMA[key].default);
  return config as Config;
}

/** `a non-negative number`, `one of "ebs", "s3"`… — the words used in error messages and the docs. */
export function describeType(type: ValueType): string {
  switch (type.kind) {
    case 'boolean':
      return 'a boolean (true, false, 0 or 1)';
    case 'number': {
      const noun = type.integer ? 'integer' : 'number';
      if (type.nullable) return `${describeType({ ...type, nullable: false })} or null`;
      if (type.max !== undefined) return `an ${noun} from ${type.min} to ${type.max}`;
      if (type.min === 0) return `a non-negative ${noun}`;
      if (type.min === 1 && type.integer) return 'a positive integer';
      return `a ${noun} of at least ${type.min}`;
    }
    case 'string':
      return 'a non-empty string';
    case 'path':
      return type.nullable ? 'a path (non-empty string) or null' : 'a path (non-empty string)';
    case 'enum':
      return `one of ${type.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'string-map':
      return 'an object whose values are strings';
    case 'number-map':
      return 'an object whose values are non-negative numbers';
    case 'path-list':
      return 'a list of paths (non-empty strings)';
    case 'object':
      return 'an object';
    case 'boolean-or-port':
      return 'a boolean or a TCP port (an integer from 0 to 65535)';
  }
}
