#!/usr/bin/env node
import sade from 'sade';
import { VERSION } from '../version.js';
import { UsageError } from './client/exit.js';
import { extractParameterFlags, type ParameterFlag } from './client/parameters.js';
import { createContext, DEFAULT_URL, optionText, type Context, type GlobalFlags, type Io } from './commands/context.js';
import type { DeleteFlags } from './commands/manage.js';
import { reportError, runCommand } from './commands/run.js';
import type { BuildFlags } from './commands/submit.js';

/** The `imagefactory` command-line client of the daemon (see docs/cli.md). */

const realExit = process.exit.bind(process);
const io: Io = { out: process.stdout, err: process.stderr };

/** Exits once stdout and stderr have been flushed (they may be pipes). */
function finish(code: number): void {
  let pending = 2;
  const done = () => --pending === 0 && realExit(code);
  process.stdout.write('', done);
  process.stderr.write('', done);
}

const COMMANDS = ['build', 'base_image', 'target_image', 'provider_image', 'images', 'delete', 'cancel', 'watch', 'plugins', 'validate'];
const BUILD_COMMANDS = new Set(['build', 'base_image', 'target_image', 'provider_image']);

type Flags = GlobalFlags & BuildFlags & DeleteFlags & { _: string[] };

let params: ParameterFlag[] = [];

/** Runs a command that talks to the daemon, then exits with its code. */
function daemonCommand(name: string, flags: Flags, fn: (ctx: Context) => Promise<number>): void {
  void runCommand(name, io, async () => {
    if (params.length && !BUILD_COMMANDS.has(name)) throw new UsageError('--parameter and --file-parameter only apply to build, base_image, target_image and provider_image', name);
    if (flags._.length) throw new UsageError(`unexpected argument ${flags._[0]}`, name);
    const ctx = createContext(flags, io, finish);
    try {
      return await fn(ctx);
    } finally {
      ctx.client.close();
    }
  }).then(finish);
}

const prog = sade('imagefactory').version(VERSION);

prog
  .option('--url', `URL of the imagefactoryd daemon (default $IMAGEFACTORY_URL, else ${DEFAULT_URL})`)
  .option('--output', 'log: progress and ids as text; json: the resulting image(s) as JSON on stdout', 'log')
  .option('--key', 'OAuth consumer key (default $IMAGEFACTORY_KEY, else "key" of the client configuration)')
  .option('--secret', 'OAuth consumer secret (default $IMAGEFACTORY_SECRET, else "secret" of the client configuration)')
  .option('--signature-method', 'HMAC-SHA1 (default) or HMAC-SHA256')
  .option('--config', 'Client configuration (JSON: url, key, secret, signature_method, ca, state_dir); default $IMAGEFACTORY_CLIENT_CONFIG, else ~/.config/imagefactory/client.json')
  .option('--ca', 'PEM file of the certificate authority to trust for an https --url (default: the local daemon\'s transient certificate is trusted)')
  .option('--insecure', 'Do not check the certificate of an https --url', false);

const buildOptions = (command: ReturnType<typeof prog.command>) =>
  command
    .option('--parameters', 'JSON file with an object of build parameters')
    .option('--parameter', 'NAME VALUE: set one parameter to the text VALUE (repeatable; overrides --parameters)')
    .option('--file-parameter', 'NAME FILE: set one parameter to the content of FILE (repeatable; applied last)')
    .option('--wait', 'Wait for the build and show its progress; --no-wait prints the id at once', true);

prog
  .command('build <template>', 'Build a base image from a TDL template right here, without a daemon (root; qemu driver, embedded defaults)')
  .option('--parameters', 'JSON file with an object of build parameters')
  .option('--parameter', 'NAME VALUE: set one parameter to the text VALUE (repeatable)')
  .option('--file-parameter', 'NAME FILE: set one parameter to the content of FILE (repeatable)')
  .option('--data', 'Directory for images, catalog and logs (default $IMAGEFACTORY_DATA, else /var/lib/imagefactory/local as root)')
  .option('--hypervisor', 'qemu, libvirt or auto', 'qemu')
  .option('--timeout', 'Time limit of the build in seconds', 3600)
  .example('build examples/debian-12.tdl')
  .action((template: string, flags: Flags & { data?: unknown; hypervisor?: unknown; timeout?: unknown }) => {
    void runCommand('build', io, async () => {
      if (flags._.length) throw new UsageError(`unexpected argument ${flags._[0]}`, 'build');
      const hypervisor = String(flags.hypervisor);
      if (!['qemu', 'libvirt', 'auto'].includes(hypervisor)) throw new UsageError(`--hypervisor must be qemu, libvirt or auto, not ${hypervisor}`, 'build');
      const timeoutSeconds = Number(flags.timeout);
      if (!(timeoutSeconds > 0)) throw new UsageError(`--timeout must be a positive number of seconds`, 'build');
      const { mergeParameters, readText } = await import('./client/parameters.js');
      const text = readText(String(template), 'TEMPLATE');
      const parameters = mergeParameters(optionText(flags.parameters, '--parameters'), params);
      const { buildLocally } = await import('./local-build.js');
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      process.once('SIGTERM', () => abort.abort());
      const dataDir = optionText(flags.data, '--data');
      const { exitCode } = await buildLocally(text, {
        ...(dataDir !== undefined ? { dataDir } : {}),
        hypervisor: hypervisor as 'qemu' | 'libvirt' | 'auto',
        timeoutSeconds,
        parameters,
        signal: abort.signal,
      });
      return exitCode;
    }).then(finish);
  });

buildOptions(prog.command('base_image <template>', 'Build a base image from a TDL template file'))
  .example('base_image examples/fedora-40.tdl')
  .example('base_image fedora.tdl --parameter generate_icicle false --no-wait')
  .action((template: string, flags: Flags) => daemonCommand('base_image', flags, async (ctx) => (await import('./commands/submit.js')).baseImage(ctx, String(template), flags, params)));

buildOptions(prog.command('target_image <target>', 'Build a target image for TARGET (e.g. ec2) from a base image (--id) or a template (--template)'))
  .option('--id', 'Id of the base image')
  .option('--template', 'TDL template file (builds the base image first)')
  .example('target_image ec2 --id 5f1c…')
  .action((target: string, flags: Flags) => daemonCommand('target_image', flags, async (ctx) => (await import('./commands/submit.js')).targetImage(ctx, String(target), flags, params)));

buildOptions(
  prog.command(
    'provider_image <target> <provider> <credentials>',
    'Push a target image to PROVIDER (@name, a name, or a JSON/XML provider file) with the CREDENTIALS file, from a target image (--id) or a template (--template)',
  ),
)
  .option('--id', 'Id of the target image')
  .option('--template', 'TDL template file (builds the base and target images first)')
  .example('provider_image ec2 @ec2-us-east-1 ec2-credentials.xml --id 9a0e…')
  .action((target: string, provider: string, credentials: string, flags: Flags) =>
    daemonCommand('provider_image', flags, async (ctx) => (await import('./commands/submit.js')).providerImage(ctx, String(target), String(provider), String(credentials), flags, params)),
  );

prog
  .command('images [query]', `List images as a table (id, kind, status, phase, percent); QUERY is a JSON object of fields to match`)
  .example(`images '{"status":"COMPLETE"}'`)
  .action((query: string | undefined, flags: Flags) =>
    daemonCommand('images', flags, async (ctx) => (await import('./commands/images.js')).listImages(ctx, query === undefined ? undefined : String(query))),
  );

prog
  .command('delete <id>', 'Delete an image (its record, file and, for a provider image, the copy on the provider)')
  .option('--cascade', 'Also delete the images made from it', false)
  .option('--provider', 'Provider of a provider image (name or @name)')
  .option('--credentials', 'Credentials file for removing a provider image from its provider')
  .option('--target', 'Target of a provider image')
  .action((id: string, flags: Flags) => daemonCommand('delete', flags, async (ctx) => (await import('./commands/manage.js')).deleteImage(ctx, String(id), flags)));

prog
  .command('cancel <id>', 'Ask the daemon to cancel a build in progress')
  .action((id: string, flags: Flags) => daemonCommand('cancel', flags, async (ctx) => (await import('./commands/manage.js')).cancelImage(ctx, String(id))));

prog
  .command('watch <id>', 'Show the progress of an image until it is final; exit 0 if COMPLETE (Ctrl-C stops watching, the build goes on)')
  .action((id: string, flags: Flags) => daemonCommand('watch', flags, async (ctx) => (await import('./commands/manage.js')).watchImage(ctx, String(id))));

prog
  .command('plugins', 'List the daemon’s plugins, or show one with --id')
  .option('--id', 'Plugin id (its .info file name)')
  .action((flags: Flags) =>
    daemonCommand('plugins', flags, async (ctx) => (await import('./commands/plugins.js')).listPlugins(ctx, optionText(flags.id, '--id'))),
  );

prog
  .command('validate [file]', 'Validate TDL templates; prints FILE: ok or each error with line, column and element path (offline)')
  .option('--json', 'Print a machine-readable result', false)
  .example('validate examples/*.tdl')
  .action((file: string | undefined, opts: { json: boolean; _: string[] }) => {
    void runCommand('validate', io, async () => {
      if (params.length) throw new UsageError('--parameter and --file-parameter only apply to build, base_image, target_image and provider_image', 'validate');
      const { runValidate } = await import('./validate.js');
      return runValidate(file === undefined ? [] : [String(file), ...opts._.map(String)], { json: Boolean(opts.json) });
    }).then(finish);
  });

/** Puts the command first when options come before it (`--insecure images`), as sade expects. */
function commandFirst(argv: string[]): string[] {
  if (!argv.length || !argv[0]!.startsWith('-')) return argv;
  const at = argv.findIndex((a) => COMMANDS.includes(a));
  return at <= 0 ? argv : [argv[at]!, ...argv.slice(0, at), ...argv.slice(at + 1)];
}

let args: string[] | undefined;
try {
  ({ rest: args, flags: params } = extractParameterFlags(process.argv.slice(2)));
} catch (e) {
  finish(reportError(undefined, io, e));
}
if (args) {
  // sade exits with 1 on its own usage errors; usage errors are 2 here (1 means a failed build or an invalid template).
  process.exit = ((code?: number) => realExit(code === 1 ? 2 : code)) as typeof process.exit;
  prog.parse([process.argv[0]!, process.argv[1]!, ...commandFirst(args)], {
    // Values stay text: an id or a file name that looks like a number is not turned into one.
    string: ['url', 'output', 'key', 'secret', 'signature-method', 'config', 'ca', 'id', 'template', 'parameters', 'provider', 'credentials', 'target'],
    unknown: (flag: string) => {
      process.stderr.write(`imagefactory: unknown option ${flag}\nRun \`imagefactory --help\` for usage.\n`);
      realExit(2);
    },
  });
  process.exit = realExit;
}
