#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TlsError } from '../api/tls.js';
import { ConfigError, daemonHelp, loadConfig, parseDaemonArgs, redactConfig, type Config } from '../config/index.js';
import { DaemonError } from '../daemon.js';
import { StoreError } from '../store/index.js';
import { DEFAULT_LOG_FILE, DEFAULT_PID_FILE, detach, isDetachedChild } from '../daemon/detach.js';
import { PidFileError, refuseIfRunning } from '../daemon/pidfile.js';
import { serve, StartFailure } from '../daemon/serve.js';
import { VERSION } from '../version.js';

/** Exit codes of `imagefactoryd`. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

interface Io {
  out: { write(s: string): unknown };
  err: { write(s: string): unknown };
}

const say = (io: Io, text: string) => io.err.write(text.split('\n').map((l) => `imagefactoryd: ${l}\n`).join(''));

/** Errors of the operator's input (configuration, TLS material, a daemon already running) exit 2; anything else is a fault (1). */
function describeFailure(e: unknown): { exitCode: number; message: string } {
  if (e instanceof ConfigError || e instanceof DaemonError || e instanceof TlsError || e instanceof PidFileError) return { exitCode: EXIT.usage, message: e.message };
  if (e instanceof StoreError && e.code === 'storage_locked') return { exitCode: EXIT.usage, message: e.message };
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'EADDRINUSE' || err?.code === 'EACCES' || err?.code === 'EADDRNOTAVAIL') return { exitCode: EXIT.usage, message: `cannot listen: ${err.message}` };
  return { exitCode: EXIT.failed, message: `internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}` };
}

/** Without --foreground: start the daemon detached and report whether it listens. */
async function startDetached(argv: readonly string[], config: Config, io: Io): Promise<number> {
  const pidFile = config.pid_file ?? DEFAULT_PID_FILE;
  const logFile = config.log_file ?? DEFAULT_LOG_FILE;
  refuseIfRunning(pidFile);
  const started = await detach({ argv, logFile });
  if (started.type === 'failed') {
    say(io, started.message);
    return started.exitCode;
  }
  io.out.write(`imagefactoryd ${VERSION} listening on ${started.url} (pid ${started.pid}; pid file ${pidFile}; log ${logFile})\n`);
  return EXIT.ok;
}

/** The whole daemon command: parse, load the configuration, then print it, detach, or serve. */
export async function runDaemonCli(argv: readonly string[], io: Io = { out: process.stdout, err: process.stderr }): Promise<number> {
  const detached = isDetachedChild();
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
    // The detached daemon logs them instead; the command that started it has said them already.
    if (!detached) for (const w of warnings) say(io, `warning: ${w}`);
    if (args.printConfig) {
      io.out.write(JSON.stringify(redactConfig(config), null, 2) + '\n');
      return EXIT.ok;
    }
    if (!config.foreground && !detached) return await startDetached(argv, config, io);
    return await serve(config, { detached, warnings: detached ? warnings : [], out: io.out, describeFailure });
  } catch (e) {
    if (e instanceof StartFailure) {
      if (!detached) say(io, e.message);
      return e.exitCode;
    }
    if (e instanceof ConfigError) {
      say(io, e.message);
      if (e.code === 'usage_invalid') io.err.write('Run `imagefactoryd --help` for the options.\n');
      return EXIT.usage;
    }
    const failure = describeFailure(e);
    say(io, failure.message);
    return failure.exitCode;
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

if (isMain()) {
  const code = await runDaemonCli(process.argv.slice(2));
  process.exitCode = code;
  // Normally nothing is left and the process ends by itself; a stray handle must not keep a stopped daemon alive.
  setTimeout(() => process.exit(code), 2000).unref();
}
