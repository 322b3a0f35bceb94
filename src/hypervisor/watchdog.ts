import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HypervisorError, InstallError, type InstallErrorCode, type InstallFailureDetails } from './errors.js';
import type { ActivitySample, Domain } from './types.js';

export interface WatchInstallOptions {
  /** Seconds without disk or network activity after which the install counts as stalled (Oz: 300). */
  stallSeconds: number;
  /** Absolute time (ms since the epoch) by which the guest must have powered off. */
  deadline: number;
  /** Aborting it destroys the guest and rejects with `cancelled`. */
  signal?: AbortSignal;
  /** How often activity is sampled; 1000 ms by default. */
  sampleMs?: number;
  /** Network bytes per sample at or below which traffic is noise, not activity (ARP, DHCP renewals); 4096 by default. */
  netNoiseBytes?: number;
  /** Where a failure's screenshot and console tail are written. */
  artifactsDir: string;
  /** The guest's console log (the spec's `serialLog`). */
  serialLog: string;
  log?: (line: string) => void;
  /** Called on every sample that counted as activity. */
  onActivity?: (sample: ActivitySample, at: number) => void;
}

export interface WatchResult {
  elapsedMs: number;
  activity: ActivitySample;
}

/** Bytes of the console kept for a failure report. */
export const SERIAL_TAIL_BYTES = 4096;

/**
 * Watches a started guest until it powers itself off, the way Oz watches an
 * install: the guest is alive while its disk requests grow or its network
 * moves more than a noise floor per sample. Rejects with `install_stalled`
 * after `stallSeconds` without activity, `timeout` at the deadline, and
 * `cancelled` when the signal aborts; a failure first saves a PNG screenshot
 * and the console tail into `artifactsDir`. The domain is destroyed on every
 * exit path, success included.
 */
export async function watchInstall(domain: Domain, options: WatchInstallOptions): Promise<WatchResult> {
  const sampleMs = options.sampleMs ?? 1000;
  const noise = options.netNoiseBytes ?? 4096;
  const stallMs = options.stallSeconds * 1000;
  const log = options.log ?? (() => {});
  const startedAt = Date.now();
  let lastActivityAt = startedAt;
  let previous: ActivitySample = { diskRequests: 0, netBytes: 0 };
  let latest = previous;

  const fail = async (code: InstallErrorCode, ending?: string): Promise<InstallError> => {
    const now = Date.now();
    const elapsedSeconds = Math.round((now - startedAt) / 100) / 10;
    const idleSeconds = Math.round((now - lastActivityAt) / 100) / 10;
    log(`watchdog: ${domain.name}: ${code} after ${elapsedSeconds} s (idle ${idleSeconds} s); saving a screenshot and the console tail`);
    const details = await collectArtifacts(domain, options, code);
    Object.assign(details, { elapsedSeconds, idleSeconds, diskRequests: latest.diskRequests, netBytes: latest.netBytes });
    const last = details.lastConsoleLine ? `last console line: ${JSON.stringify(details.lastConsoleLine)}` : 'the console is empty';
    if (ending) details.ending = ending;
    const what =
      code === 'install_stalled'
        ? `no disk or network activity for ${options.stallSeconds} s`
        : code === 'timeout'
          ? `the install did not finish before its deadline (ran ${elapsedSeconds} s)`
          : code === 'guest_crashed'
            ? `the guest did not power itself off: ${ending} after ${elapsedSeconds} s`
            : `the install was cancelled after ${elapsedSeconds} s`;
    log(`watchdog: ${domain.name}: ${code}: ${what}; ${last}`);
    return new InstallError(code, `${what}; ${last}`, details);
  };

  try {
    for (;;) {
      if (options.signal?.aborted) throw await fail('cancelled');
      if (await safely(() => domain.isOff(), false, log)) {
        const elapsedMs = Date.now() - startedAt;
        const end = await safely(() => domain.ending(), null, log);
        if (end && !end.clean) {
          // libvirtd restarting right as the guest powers off reports its qemu as ended by the daemon; the kernel's own last word says better.
          if (!(await poweredItselfOff(options.serialLog))) throw await fail('guest_crashed', end.description);
          log(`watchdog: ${domain.name}: the hypervisor reported ${end.description}, but the guest's kernel had powered it off`);
        }
        log(`watchdog: ${domain.name} powered off after ${(elapsedMs / 1000).toFixed(1)} s${end ? '' : ' (how it ended is unknown)'}`);
        return { elapsedMs, activity: latest };
      }
      const sample = await safely(() => domain.activity(), latest, log);
      const now = Date.now();
      latest = sample;
      if (sample.diskRequests > previous.diskRequests || sample.netBytes - previous.netBytes > noise) {
        lastActivityAt = now;
        options.onActivity?.(sample, now);
      }
      previous = sample;

      const stallAt = lastActivityAt + stallMs;
      if (now >= stallAt || now >= options.deadline) {
        // It may have powered off between the two looks.
        if (await safely(() => domain.isOff(), false, log)) continue;
        throw await fail(now >= stallAt ? 'install_stalled' : 'timeout');
      }
      await pause(Math.min(now + sampleMs, stallAt, options.deadline) - now, options.signal);
    }
  } finally {
    // Never let a failing destroy hide how the install ended; it is logged, and reap() at the next start catches what it left.
    await domain.destroy().catch((err: unknown) => log(`watchdog: destroying ${domain.name} failed: ${err instanceof Error ? err.message : String(err)}`));
  }
}

/** Whether the console ends with the Linux kernel's power-off message: the guest finished and synced its disks. */
async function poweredItselfOff(serialLog: string): Promise<boolean> {
  const tail = await readTail(serialLog, SERIAL_TAIL_BYTES).catch(() => '');
  return /reboot: Power down$/.test(lastLine(tail));
}

/**
 * A poll that failed (libvirtd busy, QMP hiccup) is logged and answered with
 * a fallback; the deadline still bounds the watch. A hypervisor that is gone
 * for good (`hypervisor_unavailable`, after the driver's one reconnection)
 * ends the watch: waiting for a stall would only hide it.
 */
async function safely<T>(poll: () => Promise<T>, fallback: T, log: (line: string) => void): Promise<T> {
  try {
    return await poll();
  } catch (err) {
    if (err instanceof HypervisorError && err.code === 'hypervisor_unavailable') throw err;
    log(`watchdog: poll failed: ${err instanceof Error ? err.message : String(err)}`);
    return fallback;
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}

async function collectArtifacts(domain: Domain, options: WatchInstallOptions, code: InstallErrorCode): Promise<InstallFailureDetails> {
  await mkdir(options.artifactsDir, { recursive: true });
  const details: InstallFailureDetails = {
    domain: domain.name,
    serialTail: '',
    lastConsoleLine: '',
    elapsedSeconds: 0,
    idleSeconds: 0,
    diskRequests: 0,
    netBytes: 0,
  };
  const png = join(options.artifactsDir, `${domain.name}.${code}.png`);
  const [shot, tail] = await Promise.all([
    domain.screenshot(png).then(
      () => undefined,
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    ),
    readTail(options.serialLog, SERIAL_TAIL_BYTES),
  ]);
  if (shot === undefined) details.screenshot = png;
  else details.screenshotError = shot;
  details.serialTail = tail;
  details.lastConsoleLine = lastLine(details.serialTail);
  const tailFile = join(options.artifactsDir, `${domain.name}.${code}.console.txt`);
  await writeFile(tailFile, details.serialTail);
  details.serialTailFile = tailFile;
  return details;
}

/** The last `bytes` of a file as text ('' when it does not exist), with terminal escapes and carriage returns removed. */
export async function readTail(path: string, bytes: number): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, bytes);
    const buf = Buffer.alloc(length);
    await handle.read(buf, 0, length, size - length);
    return cleanConsole(buf.toString('utf8'));
  } finally {
    await handle.close();
  }
}

function cleanConsole(text: string): string {
  return (
    text
      .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '')
      .replace(/\r+\n/g, '\n')
      .replace(/\r/g, '\n')
      .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '')
  );
}

/** The last non-blank console line, shortened to 200 characters. */
export function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines.at(-1) ?? '';
  return last.length > 200 ? `${last.slice(0, 199)}…` : last;
}
