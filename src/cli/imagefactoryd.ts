#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, daemonHelp, loadConfig, parseDaemonArgs, redactConfig } from '../config/index.js';
import { DaemonError, startDaemon } from '../daemon.js';
import { VERSION } from '../version.js';

/** Exit codes of `imagefactoryd`. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

interface Io {
  out: { write(s: string): unknown };
  err: { write(s: string): unknown };
}

const say = (io: Io, text: string) => io.err.write(text.split('\n').map((l) => `imagefactoryd: ${l}\n`).join(''));

/** The whole daemon command: parse, load the configuration, then print it or start the server. */
export async function runDaemonCli(argv: readonly string[], io: Io = { out: process.stdout, err: process.stderr }): Promise<number> {
  try {
    const args = parseDaemonArgs(argv);
    if (args.kind === 'help') {
      io.out.write(daemonHelp() + '\n');
      return EXIT.ok;
    }
    if (args.kind === 'version') {
      io.out.write(`imagefactoryd ${VERSION}\n`);
      return EXIT.ok;
    }
    const { config, warnings } = loadConfig({ configPath: args.configPath, flags: args.flags });
    for (const w of warnings) say(io, `warning: ${w}`);
    if (args.printConfig) {
      io.out.write(JSON.stringify(redactConfig(config), null, 2) + '\n');
      return EXIT.ok;
    }
    const daemon = await startDaemon(config);
    io.out.write(`imagefactoryd ${VERSION} listening on ${daemon.url}\n`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        say(io, `${signal}: stopping; unfinished builds resume at the next start`);
        process.off('SIGTERM', onTerm).off('SIGINT', onInt);
        void daemon.stop().then(resolve, resolve);
      };
      const onTerm = () => stop('SIGTERM');
      const onInt = () => stop('SIGINT');
      process.on('SIGTERM', onTerm).on('SIGINT', onInt);
    });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof ConfigError) {
      say(io, e.message);
      if (e.code === 'usage_invalid') io.err.write('Run `imagefactoryd --help` for the options.\n');
      return EXIT.usage;
    }
    if (e instanceof DaemonError) {
      say(io, e.message);
      return EXIT.usage;
    }
    say(io, `internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return EXIT.failed;
  }
}

/** True when this module is the program being run (also through npm's bin symlink), not an import. */
function isMain(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isMain()) process.exitCode = await runDaemonCli(process.argv.slice(2));
