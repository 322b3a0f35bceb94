import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { shellQuote } from '../shell-quote.js';
import { assertDomainName, HypervisorError } from './errors.js';
import { PcapByteCounter } from './pcap.js';
import { isPng, ppmToPng } from './png.js';
import { listQemuProcesses, processAlive } from './processes.js';
import { QmpClient, QmpError } from './qmp.js';
import { MAX_SOCKET_PATH, qmpSocketPath, runtimeDirFor } from './runtime-dir.js';
import type { Accel, ActivitySample, Domain, DomainSpec, GuestEnd, HypervisorDriver } from './types.js';

export interface QemuDriverOptions {
  /** The emulator; `qemu-system-x86_64` from PATH by default. */
  binary?: string;
  /** Where QMP sockets and network dumps live while a guest runs: a short runtime directory (runtime-dir.ts) by default. */
  runDir?: string;
  /** UEFI firmware image for `firmware: 'uefi'`; the first of the usual OVMF paths that exists by default. */
  uefiFirmware?: string;
  log?: (line: string) => void;
}

/** Paths a qemu process uses besides those in its spec. */
export interface QemuRunPaths {
  qmpSocket: string;
  /** pcap written by `filter-dump`, read for network byte counts (user networking has no counters). */
  netDump?: string;
  /** Firmware for `-bios` when the spec asks for UEFI. */
  uefiFirmware?: string;
}

/** The frame bytes kept per packet in the network dump: the pcap header holds the full length, which is all we count. */
export const NET_DUMP_SNAPLEN = 64;

const UEFI_CANDIDATES = ['/usr/share/ovmf/OVMF.fd', '/usr/share/qemu/OVMF.fd', '/usr/share/OVMF/OVMF.fd'];
const START_TIMEOUT_MS = 20_000;
const QUIT_GRACE_MS = 3000;
const KILL_WAIT_MS = 5000;
const STDERR_TAIL = 8 * 1024;
/** The descriptor qemu reads a saved state from (`-incoming fd:3`). */
const RESTORE_FD = 3;
/** Bytes per second: as fast as the disk takes it. */
const MIGRATION_BANDWIDTH = 64 * 2 ** 30;
const MIGRATION_TIMEOUT_MS = 120_000;


/** QEMU option values separate properties with commas; a literal comma is written twice. */
const optValue = (s: string): string => s.replace(/,/g, ',,');

/**
 * The qemu command line (without the binary) for a spec. Everything comes
 * from the spec: no defaults devices (`-nodefaults`), virtio disks in order,
 * the console on the first serial port, a VGA card without a window so that
 * `screendump` has something to capture, and `-no-reboot` so that a guest
 * asking to reboot ends the process instead of looping.
 */
export function qemuCommandLine(spec: DomainSpec, paths: QemuRunPaths): string[] {
  const args = ['-name', spec.name, '-machine', 'pc'];
  if (spec.accel === 'kvm') args.push('-accel', 'kvm', '-cpu', 'host');
  else args.push('-accel', 'tcg,thread=multi');
  args.push('-m', String(spec.memoryMiB), '-smp', String(spec.vcpus), '-nodefaults', '-no-user-config');
  if (spec.firmware === 'uefi') {
    if (!paths.uefiFirmware) throw new HypervisorError('invalid_domain_spec', 'UEFI firmware (OVMF) was asked for but none is installed', { name: spec.name });
    args.push('-bios', paths.uefiFirmware);
  }
  spec.disks.forEach((disk, i) => {
    args.push('-drive', `file=${optValue(disk.path)},format=${disk.format},if=virtio,index=${i}${disk.readonly ? ',readonly=on' : ''}`);
  });
  if (spec.cdrom) args.push('-drive', `file=${optValue(spec.cdrom)},format=raw,if=ide,index=2,media=cdrom,readonly=on`);
  if (spec.kernel) {
    args.push('-kernel', spec.kernel.path);
    if (spec.kernel.initrd) args.push('-initrd', spec.kernel.initrd);
    if (spec.kernel.cmdline) args.push('-append', spec.kernel.cmdline);
  } else {
    args.push('-boot', spec.cdrom ? 'order=dc' : 'order=c');
  }
  args.push('-serial', `file:${spec.serialLog}`);
  if (spec.channelLog) args.push('-serial', `file:${spec.channelLog}`);
  args.push('-device', 'VGA', '-display', 'none');
  if (spec.network === 'user') {
    args.push('-netdev', 'user,id=net0', '-device', 'virtio-net-pci,netdev=net0');
    if (paths.netDump) args.push('-object', `filter-dump,id=netdump0,netdev=net0,file=${optValue(paths.netDump)},maxlen=${NET_DUMP_SNAPLEN}`);
  }
  args.push('-qmp', `unix:${optValue(paths.qmpSocket)},server=on,wait=off`, '-no-reboot');
  // The saved state is read from a descriptor start() opens: no shell, no quoting of the path.
  if (spec.restoreFrom) args.push('-incoming', `fd:${RESTORE_FD}`);
  return args;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone
  }
}

interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

class QemuDomain implements Domain {
  private child: ChildProcess | undefined;
  private exitStatus: ExitStatus | undefined;
  private exited: Promise<void> | undefined;
  private qmp: QmpClient | undefined;
  private stderrTail = '';
  private last: ActivitySample = { diskRequests: 0, netBytes: 0 };
  private readonly netCounter: PcapByteCounter | undefined;
  private destroying: Promise<void> | undefined;
  /** QMP's SHUTDOWN event: who asked (`guest-shutdown`, `guest-reset`, `host-signal`, `host-qmp-quit`, `guest-panic`…). */
  private shutdownReason: string | undefined;
  private readonly qmpSocket: string;
  private readonly netDump: string | undefined;

  constructor(
    private readonly spec: DomainSpec,
    private readonly driver: QemuDriver,
  ) {
    this.qmpSocket = qmpSocketPath(driver.runDir, spec.name);
    this.netDump = spec.network === 'user' ? join(driver.runDir, `${spec.name}.pcap`) : undefined;
    this.netCounter = this.netDump ? new PcapByteCounter(this.netDump) : undefined;
  }

  get name(): string {
    return this.spec.name;
  }

  /** How qemu ended, once it has. */
  get exit(): ExitStatus | undefined {
    return this.exitStatus;
  }

  commandLine(): string[] {
    return qemuCommandLine(this.spec, { qmpSocket: this.qmpSocket, netDump: this.netDump, uefiFirmware: this.driver.uefiFirmware });
  }

  async start(): Promise<void> {
    if (this.child || this.destroying) throw new HypervisorError('domain_start_failed', `domain ${this.name} was already started or destroyed`, { name: this.name });
    const args = this.commandLine();
    const clash = listQemuProcesses().find((p) => p.name === this.name);
    if (clash) throw new HypervisorError('domain_exists', `a qemu process named ${this.name} is already running (pid ${clash.pid})`, { name: this.name, pid: clash.pid });
    await mkdir(this.driver.runDir, { recursive: true, mode: 0o700 });
    await rm(this.qmpSocket, { force: true });
    if (this.netDump) await rm(this.netDump, { force: true });
    this.driver.log?.(`qemu: starting ${this.name}: ${this.driver.binary} ${args.join(' ')}`);

    // Its own process group (detached), so destroy can kill whatever it spawned with it.
    const stateFd = this.spec.restoreFrom ? openSync(this.spec.restoreFrom, 'r') : undefined;
    let child: ChildProcess;
    try {
      child = spawn(this.driver.binary, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe', ...(stateFd === undefined ? [] : [stateFd])] });
    } finally {
      if (stateFd !== undefined) closeSync(stateFd);
    }
    this.child = child;
    this.exited = new Promise<void>((resolveExit) => {
      child.once('exit', (code, signal) => {
        this.exitStatus ??= { code, signal };
        resolveExit();
      });
      child.once('error', (error) => {
        this.exitStatus ??= { code: null, signal: null, error };
        resolveExit();
      });
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL);
    });
    void this.exited.then(() => {
      const s = this.exitStatus!;
      this.driver.log?.(`qemu: ${this.name} exited (${s.error ? s.error.message : s.signal ? `signal ${s.signal}` : `code ${s.code}`})`);
      this.qmp?.close();
    });

    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (this.exitStatus) throw this.startFailure();
      try {
        this.qmp = await QmpClient.connect(this.qmpSocket, 2000);
        this.qmp.onEvent = (e) => {
          if (e.event === 'SHUTDOWN') this.shutdownReason ??= String((e.data as { reason?: unknown } | undefined)?.reason ?? 'unknown');
        };
      } catch {
        if (Date.now() > deadline) {
          await this.destroy();
          throw new HypervisorError('domain_start_failed', `qemu for ${this.name} did not open its QMP socket within ${START_TIMEOUT_MS / 1000} s`, {
            name: this.name,
            stderr: this.stderrTail,
          });
        }
        await Promise.race([sleep(50), this.exited]);
        continue;
      }
      break;
    }
    if (this.spec.restoreFrom) await this.finishRestore();
  }

  /** Waits for the saved state to be loaded, then lets the guest run (a state saved paused loads paused). */
  private async finishRestore(): Promise<void> {
    const deadline = Date.now() + MIGRATION_TIMEOUT_MS;
    try {
      for (;;) {
        if (this.exitStatus) throw this.startFailure();
        const { status } = await this.qmp!.execute<{ status: string }>('query-status');
        if (status !== 'inmigrate') break;
        if (Date.now() > deadline) throw new HypervisorError('checkpoint_unusable', `qemu for ${this.name} did not load its saved state within ${MIGRATION_TIMEOUT_MS / 1000} s`, { name: this.name });
        await Promise.race([sleep(20), this.exited]);
      }
      await this.qmp!.execute('cont');
    } catch (e) {
      await this.destroy();
      if (e instanceof HypervisorError) throw e;
      throw new HypervisorError('checkpoint_unusable', `qemu for ${this.name} could not resume its saved state: ${(e as Error).message}${this.stderrTail.trim() ? `; stderr: ${this.stderrTail.trim().split('\n').slice(-2).join(' / ')}` : ''}`, { name: this.name, stderr: this.stderrTail });
    }
  }

  async checkpoint(stateFile: string): Promise<void> {
    const qmp = this.qmp;
    if (!qmp || qmp.isClosed || this.exitStatus) throw new HypervisorError('checkpoint_unusable', `domain ${this.name} is not running; no checkpoint`, { name: this.name });
    await qmp.execute('stop');
    // Migration is throttled to 128 MiB/s by default, meant for a live guest on a shared network; this one is paused and goes to a local file.
    await qmp.execute('migrate-set-parameters', { 'max-bandwidth': MIGRATION_BANDWIDTH });
    await qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(stateFile)}` });
    const deadline = Date.now() + MIGRATION_TIMEOUT_MS;
    for (;;) {
      const m = await qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
      if (m.status === 'completed') return;
      if (m.status === 'failed' || m.status === 'cancelled' || Date.now() > deadline) {
        throw new HypervisorError('checkpoint_unusable', `saving the state of ${this.name} ${m.status === 'failed' ? `failed: ${m['error-desc'] ?? 'no reason given'}` : m.status === 'cancelled' ? 'was cancelled' : 'took too long'}`, { name: this.name });
      }
      await sleep(20);
    }
  }

  async resume(): Promise<void> {
    await this.qmp?.execute('cont');
  }

  private startFailure(): HypervisorError {
    const s = this.exitStatus!;
    const why = s.error ? s.error.message : `exit code ${s.code ?? `signal ${s.signal}`}`;
    const stderr = this.stderrTail.trim();
    // A state that does not load (another emulator build, a damaged file) stops qemu at start too.
    return new HypervisorError(this.spec.restoreFrom ? 'checkpoint_unusable' : 'domain_start_failed', `qemu for ${this.name} stopped at start (${why})${stderr ? `: ${stderr.split('\n').slice(-3).join(' / ')}` : ''}`, {
      name: this.name,
      stderr,
    });
  }

  async isOff(): Promise<boolean> {
    return this.exitStatus !== undefined || this.destroying !== undefined;
  }

  /**
   * Clean only when qemu exited 0 after the guest itself asked to power off
   * or reboot (`-no-reboot` ends qemu on a reboot too). A signal, a non-zero
   * code, a SHUTDOWN caused by the host (`host-signal`: someone sent qemu
   * SIGTERM, which qemu answers with exit code 0) or a guest panic is not.
   */
  async ending(): Promise<GuestEnd | null> {
    if (this.destroying && !this.exitStatus) return { clean: false, description: 'the guest was destroyed' };
    const s = this.exitStatus;
    if (!s) return null;
    if (s.error) return { clean: false, description: `qemu failed: ${s.error.message}` };
    const tail = this.stderrTail.trim().split('\n').slice(-2).join(' / ');
    const why = tail ? `; stderr: ${tail}` : '';
    if (s.signal) return { clean: false, description: `qemu was killed by ${s.signal}${why}` };
    if (s.code !== 0) return { clean: false, description: `qemu exited with code ${s.code}${why}` };
    const reason = this.shutdownReason;
    if (reason === undefined || reason === 'guest-shutdown' || reason === 'guest-reset') return { clean: true, description: `qemu exited after ${reason ?? 'an unreported shutdown'}` };
    return { clean: false, description: `qemu shut down by ${reason}${why}` };
  }

  /**
   * Disk requests from `query-blockstats` (reads + writes over every drive);
   * network bytes from the `filter-dump` capture. After qemu has exited the
   * last sample is returned.
   */
  async activity(): Promise<ActivitySample> {
    const qmp = this.qmp;
    if (!qmp || qmp.isClosed || this.exitStatus) return this.last;
    let diskRequests = this.last.diskRequests;
    try {
      const devices = await qmp.execute<Array<{ stats?: { rd_operations?: number; wr_operations?: number } }>>('query-blockstats');
      diskRequests = devices.reduce((sum, d) => sum + (d.stats?.rd_operations ?? 0) + (d.stats?.wr_operations ?? 0), 0);
    } catch {
      return this.last; // qemu is going away; keep the last numbers
    }
    const netBytes = this.netCounter ? await this.netCounter.read() : 0;
    this.last = { diskRequests, netBytes };
    return this.last;
  }

  async screenshot(pngPath: string): Promise<void> {
    const qmp = this.qmp;
    if (!qmp || qmp.isClosed || this.exitStatus) throw new Error(`domain ${this.name} is not running; no screenshot`);
    const target = isAbsolute(pngPath) ? pngPath : resolve(pngPath);
    try {
      await qmp.execute('screendump', { filename: target, format: 'png' });
    } catch (err) {
      // QEMU before 7.1 knows only PPM.
      if (!(err instanceof QmpError) || !/format/i.test(err.message)) throw err;
      await qmp.execute('screendump', { filename: target });
    }
    const data = await readFile(target);
    if (!isPng(data)) await writeFile(target, ppmToPng(data));
  }

  destroy(): Promise<void> {
    this.destroying ??= this.stop();
    return this.destroying;
  }

  private async stop(): Promise<void> {
    const child = this.child;
    if (child?.pid !== undefined && !this.exitStatus) {
      try {
        await this.qmp?.execute('quit', undefined, 2000);
      } catch {
        // not answering: it gets SIGKILL below
      }
      await Promise.race([this.exited, sleep(QUIT_GRACE_MS)]);
      if (!this.exitStatus) {
        killGroup(child.pid, 'SIGKILL');
        await Promise.race([this.exited, sleep(KILL_WAIT_MS)]);
      }
    }
    this.qmp?.close();
    await rm(this.qmpSocket, { force: true });
    if (this.netDump) await rm(this.netDump, { force: true });
  }
}

/**
 * Runs guests as directly spawned `qemu-system-x86_64` processes, each in
 * its own process group, driven over QMP. Power-off is the process ending
 * by itself. Network byte counts come from a `filter-dump` capture, since
 * user-mode networking has no counters of its own.
 */
export class QemuDriver implements HypervisorDriver {
  readonly kind = 'qemu' as const;
  readonly binary: string;
  readonly runDir: string;
  readonly uefiFirmware: string | undefined;
  readonly log: ((line: string) => void) | undefined;

  constructor(options: QemuDriverOptions = {}) {
    this.binary = options.binary ?? 'qemu-system-x86_64';
    this.runDir = options.runDir ?? runtimeDirFor('qemu');
    this.uefiFirmware = options.uefiFirmware ?? UEFI_CANDIDATES.find((p) => existsSync(p));
    this.log = options.log;
  }

  async define(spec: DomainSpec): Promise<Domain & { commandLine(): string[] }> {
    assertDomainName(spec.name);
    const socket = qmpSocketPath(this.runDir, spec.name);
    if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) throw new HypervisorError('invalid_domain_spec', `QMP socket path ${socket} is too long for a unix socket`, { name: spec.name });
    const domain = new QemuDomain(spec, this);
    domain.commandLine(); // validates the spec (firmware) before anything runs
    return domain;
  }

  /**
   * Kills every qemu process this driver started (plain `-name NAME`) whose
   * name starts with `prefix`: after a daemon crash they keep running,
   * detached. Processes started by libvirtd (`-name guest=…`) are left to
   * the libvirt driver.
   */
  async reap(prefix: string): Promise<string[]> {
    const victims = listQemuProcesses().filter((p) => p.startedBy === 'qemu' && p.name.startsWith(prefix));
    for (const p of victims) {
      this.log?.(`qemu: reaping leftover ${p.name} (pid ${p.pid})`);
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    const until = Date.now() + KILL_WAIT_MS;
    while (victims.some((p) => processAlive(p.pid)) && Date.now() < until) await sleep(50);
    for (const p of victims) {
      await rm(qmpSocketPath(this.runDir, p.name), { force: true });
      await rm(join(this.runDir, `${p.name}.pcap`), { force: true });
    }
    return [...new Set(victims.map((p) => p.name))];
  }

  private version: Promise<string | undefined> | undefined;

  async checkpointIdentity(accel: Accel): Promise<string> {
    this.version ??= qemuVersion(this.binary);
    return `qemu ${(await this.version) ?? 'unknown'} ${accel} machine pc`;
  }

  /** Nothing to release: running guests are left alone (destroy them first, or reap them at the next start). */
  async close(): Promise<void> {}
}

/** Whether the emulator runs at all (for `auto` selection and diagnostics). */
export async function qemuVersion(binary = 'qemu-system-x86_64'): Promise<string | undefined> {
  return new Promise((resolveVersion) => {
    const child = spawn(binary, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (t: string) => (out += t));
    child.once('error', () => resolveVersion(undefined));
    child.once('close', (code) => resolveVersion(code === 0 ? /version (\S+)/.exec(out)?.[1] : undefined));
  });
}
