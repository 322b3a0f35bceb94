import sade from 'sade';
import { ConfigError, type ConfigProblem } from './errors.js';
import { DEFAULT_CONFIG_PATH, SCHEMA, type Config, type ConfigKey } from './schema.js';
import { checkValue } from './validate.js';

/**
 * The options of `imagefactoryd` (those of the original man page, plus --print-config) and their
 * parsing into configuration overrides. `-h/--help` and `-v/--version` are added by sade.
 */
interface DaemonOption {
  flag: string;
  /** `optional-value`: alone it means true, with a value (`--inspect=9000`) that value. */
  kind: 'boolean' | 'value' | 'optional-value';
  description: string;
  /** Shown as "(default …)" in --help. */
  shownDefault?: string | number | boolean;
  /** The configuration key it overrides. */
  key?: ConfigKey;
}

function keyOption(key: ConfigKey, description?: string): DaemonOption {
  const spec = SCHEMA[key];
  const flag = spec.flag;
  if (flag === undefined) throw new Error(`config key ${key} has no flag`);
  const d = spec.default;
  return {
    flag,
    key,
    kind: spec.type.kind === 'boolean' ? 'boolean' : spec.type.kind === 'boolean-or-port' ? 'optional-value' : 'value',
    description: description ?? spec.description,
    ...(typeof d === 'string' || typeof d === 'number' || typeof d === 'boolean' ? { shownDefault: d } : {}),
  };
}

export const DAEMON_OPTIONS: readonly DaemonOption[] = [
  keyOption('verbose'),
  keyOption('debug'),
  { flag: '--config', kind: 'value', description: 'Configuration file (JSON); command-line options override it.', shownDefault: DEFAULT_CONFIG_PATH },
  keyOption('imgdir'),
  keyOption('timeout'),
  keyOption('tmpdir'),
  keyOption('plugins'),
  keyOption('ec2-32bit-util'),
  keyOption('ec2-64bit-util'),
  keyOption('foreground'),
  keyOption('pid_file', 'File holding the daemon\'s pid; a second daemon on it refuses to start (default: /run/imagefactoryd.pid when detached, none in the foreground)'),
  keyOption('log_file', 'File to log to, reopened on SIGHUP (default: /var/log/imagefactory/imagefactoryd.log when detached, stderr in the foreground)'),
  keyOption('port'),
  keyOption('address'),
  keyOption('no_ssl'),
  keyOption('ssl_pem', 'PEM file with the HTTPS certificate and key (default: a transient self-signed certificate is generated at start-up)'),
  keyOption('no_oauth'),
  keyOption('inspect', "Relay build machines to Stately's inspector on ws://127.0.0.1:8080; --inspect=PORT picks the port (0: a free one)"),
  { flag: '--print-config', kind: 'boolean', description: 'Print the effective configuration as JSON, secrets replaced by "***", and exit.', shownDefault: false },
];

const name = (o: DaemonOption) => o.flag.slice(2);

function buildProgram(version: string): sade.Sade {
  const prog = sade('imagefactoryd', true)
    .version(version)
    .describe([
      'Image Factory build daemon: serves the REST API that builds images from TDL templates and pushes them to clouds.',
      'Settings come from the configuration file; the options below override it.',
    ]);
  for (const o of DAEMON_OPTIONS) prog.option(o.flag, o.description, o.shownDefault);
  prog.example('--foreground --no_ssl --no_oauth --port 8075');
  prog.example('--print-config --config ./imagefactory.conf');
  return prog;
}

/** The text of `imagefactoryd --help`, as sade renders it. */
export function daemonHelp(): string {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => void lines.push(args.map(String).join(' '));
  try {
    buildProgram('0.0.0').help();
  } finally {
    console.log = log;
  }
  return lines.join('\n');
}

export type DaemonArgs =
  | { kind: 'help' }
  | { kind: 'version' }
  | {
      kind: 'run';
      /** Only when --config was given: an explicit file must exist, the default one need not. */
      configPath: string | undefined;
      printConfig: boolean;
      flags: Partial<Config>;
    };

const normalized = (s: string) => s.replace(/^-+/, '').toLowerCase().replace(/[-_]/g, '');

function unknownOption(flag: string): never {
  const bare = flag.replace(/=.*$/s, '');
  const near = DAEMON_OPTIONS.find((o) => normalized(o.flag) === normalized(bare));
  throw new ConfigError('usage_invalid', `unknown option ${bare}${near ? ` (did you mean ${near.flag}?)` : ''}`);
}

/** The last of repeated values (`--port 1 --port 2` → 2), as the original's argparse did. */
const last = (v: unknown): unknown => (Array.isArray(v) ? v[v.length - 1] : v);

function flagValue(key: ConfigKey, raw: string): unknown {
  const kind = SCHEMA[key].type.kind;
  if (kind === 'number' && /^\s*-?\d+(\.\d+)?([eE][+-]?\d+)?\s*$/.test(raw)) return Number(raw);
  return raw;
}

/** mri gives `true` for a bare flag and a number for `--flag=9000`; the words true and false are booleans. */
function optionalValue(v: unknown): unknown {
  if (v === 'true' || v === 'false') return v === 'true';
  return v;
}

/**
 * Parses the daemon's arguments (without `node` and the script). Throws ConfigError: `usage_invalid`
 * for unknown options, missing values and stray arguments; `config_wrong_type` for values of the
 * wrong type (every one of them).
 */
export function parseDaemonArgs(argv: readonly string[]): DaemonArgs {
  const prog = buildProgram('0.0.0');
  let early: 'help' | 'version' | undefined;
  // sade answers -h and -v itself (printing); catch that instead, so parsing has no side effect.
  prog.help = () => void (early = 'help');
  (prog as unknown as { _version: () => void })._version = () => void (early ??= 'version');

  const booleans = DAEMON_OPTIONS.filter((o) => o.kind === 'boolean').map(name);
  const strings = DAEMON_OPTIONS.filter((o) => o.kind === 'value').map(name);
  const parsed = prog.parse(['node', 'imagefactoryd', ...argv], {
    lazy: true,
    boolean: booleans,
    string: strings,
    // No defaults while parsing: an option that was not given must not override the file.
    default: Object.fromEntries(DAEMON_OPTIONS.map((o) => [name(o), undefined])),
    unknown: unknownOption,
  });
  if (early !== undefined) return { kind: early };

  const out = parsed.args[parsed.args.length - 1] as unknown as Record<string, unknown> & { _: unknown[] };
  const stray = out._.filter((a) => a !== undefined);
  if (stray.length > 0) {
    throw new ConfigError('usage_invalid', `unexpected argument ${JSON.stringify(String(stray[0]))} (options that take no value cannot be given one)`);
  }

  const flags: Record<string, unknown> = {};
  const problems: ConfigProblem[] = [];
  for (const o of DAEMON_OPTIONS) {
    const v = last(out[name(o)]);
    if (v === undefined) continue;
    if (o.kind === 'value' && v === '') throw new ConfigError('usage_invalid', `option ${o.flag} needs a value`);
    if (o.key === undefined) continue;
    const result = checkValue(o.key, o.kind === 'boolean' ? v : o.kind === 'optional-value' ? optionalValue(v) : flagValue(o.key, String(v)));
    if (result.ok) flags[o.key] = result.value;
    else for (const p of result.problems) problems.push({ key: p.path, expected: p.expected, message: `option ${o.flag} must be ${p.expected}, got ${p.got}` });
  }
  if (problems.length > 0) throw new ConfigError('config_wrong_type', problems.map((p) => p.message).join('\n'), problems);

  const config = last(out['config']);
  return {
    kind: 'run',
    configPath: config === undefined ? undefined : String(config),
    printConfig: last(out['print-config']) === true,
    flags: flags as Partial<Config>,
  };
}
