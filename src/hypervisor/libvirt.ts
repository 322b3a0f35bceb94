import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { Hypervisor } from '@unraid/libvirt';
import { assertDomainName, HypervisorError } from './errors.js';
import { isPng, ppmToPng } from './png.js';
import type { ActivitySample, Domain, DomainSpec, GuestEnd, HypervisorDriver } from './types.js';
import { readTail } from './watchdog.js';
import { activityFromDomstats, parseDomstats, virsh } from './virsh.js';

export interface LibvirtDriverOptions {
  /** libvirt connection URI; `qemu:///system` by default. */
  uri?: string;
  /** The emulator named in the domain XML; `/usr/bin/qemu-system-x86_64` by default. */
  emulator?: string;
  /** UEFI firmware image for `firmware: 'uefi'`; the first usual OVMF path that exists by default. */
  uefiFirmware?: string;
  /** `virsh` for statistics and screenshots; from PATH by default. */
  virsh?: string;
  /** How long a lost connection is given to come back (libvirtd restarting) before `hypervisor_unavailable`; 15 s by default. */
  reconnectTimeoutMs?: number;
  /** Where libvirtd writes each domain's log (`NAME.log`), read for how a guest ended; `/var/log/libvirt/qemu` by default. */
  domainLogDir?: string;
  log?: (line: string) => void;
}

const UEFI_CANDIDATES = ['/usr/share/ovmf/OVMF.fd', '/usr/share/qemu/OVMF.fd', '/usr/share/OVMF/OVMF.fd'];

/** The longest a libvirt call may take before the connection is suspected dead. */
const CALL_TIMEOUT_MS = 30_000;

/** libvirt's virDomainState values we look at (the binding's enum, without importing it at load time). */
const STATE_SHUTOFF = 5;
const STATE_CRASHED = 6;

const xmlText = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');

/**
 * Every @unraid/libvirt error has code -1 (see ENVIRONMENT.md), so "the
 * domain does not exist" is recognised by libvirt's message text.
 */
export function isNoDomainError(err: unknown): boolean {
  return err instanceof Error && /domain not found|no domain with matching/i.test(err.message);
}

export interface DomainXmlOptions {
  emulator: string;
  uefiFirmware?: string;
}

/**
 * The transient domain for a spec. `<features><acpi/>` is required: without
 * ACPI the guest's power-off only halts it and the domain stays "running".
 * Every lifecycle end (`on_poweroff`, `on_reboot`, `on_crash`) destroys the
 * domain, so a reboot request ends the install instead of looping.
 */
export function domainXml(spec: DomainSpec, opts: DomainXmlOptions): string {
  const x = xmlText;
  const lines: string[] = [];
  lines.push(`<domain type='${spec.accel === 'kvm' ? 'kvm' : 'qemu'}'>`);
  lines.push(`  <name>${x(spec.name)}</name>`);
  lines.push(`  <memory unit='MiB'>${spec.memoryMiB}</memory>`);
  lines.push(`  <vcpu>${spec.vcpus}</vcpu>`);
  lines.push('  <os>');
  lines.push(`    <type arch='x86_64' machine='pc'>hvm</type>`);
  if (spec.firmware === 'uefi') {
    if (!opts.uefiFirmware) throw new HypervisorError('invalid_domain_spec', 'UEFI firmware (OVMF) was asked for but none is installed', { name: spec.name });
    lines.push(`    <loader readonly='yes' type='rom'>${x(opts.uefiFirmware)}</loader>`);
  }
  if (spec.kernel) {
    lines.push(`    <kernel>${x(spec.kernel.path)}</kernel>`);
    if (spec.kernel.initrd) lines.push(`    <initrd>${x(spec.kernel.initrd)}</initrd>`);
    if (spec.kernel.cmdline) lines.push(`    <cmdline>${x(spec.kernel.cmdline)}</cmdline>`);
  } else {
    if (spec.cdrom) lines.push(`    <boot dev='cdrom'/>`);
    lines.push(`    <boot dev='hd'/>`);
  }
  lines.push('  </os>');
  lines.push('  <features><acpi/></features>');
  if (spec.accel === 'kvm') lines.push(`  <cpu mode='host-passthrough'/>`);
  lines.push(`  <clock offset='utc'/>`);
  lines.push('  <on_poweroff>destroy</on_poweroff>');
  lines.push('  <on_reboot>destroy</on_reboot>');
  lines.push('  <on_crash>destroy</on_crash>');
  lines.push('  <devices>');
  lines.push(`    <emulator>${x(opts.emulator)}</emulator>`);
  spec.disks.forEach((disk, i) => {
    lines.push(`    <disk type='file' device='disk'>`);
    lines.push(`      <driver name='qemu' type='${disk.format}'/>`);
    lines.push(`      <source file='${x(disk.path)}'/>`);
    lines.push(`      <target dev='vd${String.fromCharCode(97 + i)}' bus='virtio'/>`);
    if (disk.readonly) lines.push('      <readonly/>');
    lines.push('    </disk>');
  });
  if (spec.cdrom) {
    lines.push(`    <disk type='file' device='cdrom'>`);
    lines.push(`      <driver name='qemu' type='raw'/>`);
    lines.push(`      <source file='${x(spec.cdrom)}'/>`);
    lines.push(`      <target dev='hdc' bus='ide'/>`);
    lines.push('      <readonly/>');
    lines.push('    </disk>');
  }
  if (spec.network === 'user') {
    lines.push(`    <interface type='user'>`);
    lines.push(`      <model type='virtio'/>`);
    lines.push('    </interface>');
  }
  lines.push(`    <serial type='file'>`);
  lines.push(`      <source path='${x(spec.serialLog)}'/>`);
  lines.push(`      <target port='0'/>`);
  lines.push('    </serial>');
  if (spec.channelLog) {
    lines.push(`    <serial type='file'>`);
    lines.push(`      <source path='${x(spec.channelLog)}'/>`);
    lines.push(`      <target port='1'/>`);
    lines.push('    </serial>');
  }
  lines.push(`    <console type='file'>`);
  lines.push(`      <source path='${x(spec.serialLog)}'/>`);
  lines.push(`      <target type='serial' port='0'/>`);
  lines.push('    </console>');
  lines.push(`    <video><model type='vga'/></video>`);
  lines.push(`    <graphics type='vnc' listen='127.0.0.1' autoport='yes'/>`);
  lines.push(`    <memballoon model='none'/>`);
  lines.push('  </devices>');
  lines.push('</domain>');
  return `${lines.join('\n')}\n`;
}

class LibvirtDomain implements Domain {
  private started = false;
  private destroying: Promise<void> | undefined;
  private last: ActivitySample = { diskRequests: 0, netBytes: 0 };

  constructor(
    readonly name: string,
    readonly xml: string,
    private readonly driver: LibvirtDriver,
  ) {}

  async start(): Promise<void> {
    if (this.started || this.destroying) throw new HypervisorError('domain_start_failed', `domain ${this.name} was already started or destroyed`, { name: this.name });
    this.driver.log?.(`libvirt: creating transient domain ${this.name} on ${this.driver.uri}`);
    try {
      await this.driver.call((c) => c.domainCreateXML(this.xml));
    } catch (err) {
      if (err instanceof HypervisorError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      const code = /already exists/i.test(message) ? 'domain_exists' : 'domain_start_failed';
      throw new HypervisorError(code, `libvirt could not start ${this.name}: ${message}`, { name: this.name, uri: this.driver.uri });
    }
    this.started = true;
  }

  /** A transient domain disappears when it powers off; a defined one would show SHUTOFF. Polled: the binding has no lifecycle events. */
  async isOff(): Promise<boolean> {
    if (this.destroying) return true;
    if (!this.started) return false;
    try {
      const state = await this.driver.call(async (c) => (await (await c.domainLookupByName(this.name)).getInfo()).state);
      return state === STATE_SHUTOFF || state === STATE_CRASHED;
    } catch (err) {
      if (isNoDomainError(err)) return true;
      throw err;
    }
  }

  /**
   * A transient domain vanishes when it ends, whichever way: how it ended is
   * in the log libvirtd keeps for it (`shutting down, reason=shutdown` for
   * the guest's own power-off; `crashed`, `destroyed`, `failed`… otherwise).
   */
  async ending(): Promise<GuestEnd | null> {
    if (this.destroying) return { clean: false, description: 'the guest was destroyed' };
    const log = await readTail(join(this.driver.domainLogDir, `${this.name}.log`), 16 * 1024);
    // The log spans every start of a domain of this name: only the last run counts.
    const lastRun = log.slice(Math.max(0, log.lastIndexOf('starting up')));
    const reason = [...lastRun.matchAll(/shutting down, reason=([a-z-]+)/g)].at(-1)?.[1];
    if (reason === undefined) return null;
    if (reason === 'shutdown') return { clean: true, description: 'libvirt: reason=shutdown' };
    const qemuSaid = lastRun.split('\n').filter((l) => /qemu-system|terminating|error/i.test(l)).slice(-2).join(' / ');
    return { clean: false, description: `libvirt ended the domain with reason=${reason}${qemuSaid ? `; ${qemuSaid}` : ''}` };
  }

  /**
   * One `virsh domstats --block --interface` call (the binding has no
   * statistics): disk requests over all disks, and rx+tx bytes of the
   * interfaces that have a host device. User-mode networking has none, so
   * with `network: 'user'` netBytes stays 0 and disk requests are the signal.
   */
  async activity(): Promise<ActivitySample> {
    if (!this.started || this.destroying) return this.last;
    const r = await virsh(this.driver.uri, ['domstats', '--block', '--interface', this.name], { binary: this.driver.virshBinary, timeoutMs: 5000 });
    if (r.code !== 0) return this.last; // gone (powered off) or libvirtd busy: keep the last numbers
    const stats = parseDomstats(r.stdout);
    if (![...stats.keys()].some((k) => k.startsWith('block.'))) return this.last;
    this.last = activityFromDomstats(stats);
    return this.last;
  }

  /** `virsh screenshot`: libvirt 9 + qemu 7.2 write PNG; older pairs write PPM, converted here. */
  async screenshot(pngPath: string): Promise<void> {
    const target = isAbsolute(pngPath) ? pngPath : resolve(pngPath);
    const raw = `${target}.screendump`;
    try {
      const r = await virsh(this.driver.uri, ['screenshot', this.name, raw, '--screen', '0'], { binary: this.driver.virshBinary, timeoutMs: 10_000 });
      if (r.code !== 0) throw new Error(`virsh screenshot ${this.name} failed: ${r.stderr.trim()}`);
      const data = await readFile(raw);
      await writeFile(target, isPng(data) ? data : ppmToPng(data));
    } finally {
      await rm(raw, { force: true });
    }
  }

  destroy(): Promise<void> {
    this.destroying ??= this.driver.destroyByName(this.name);
    return this.destroying;
  }
}

/**
 * Runs guests as transient libvirt domains through @unraid/libvirt (on the
 * main thread: the binding is not thread-safe). What the binding lacks —
 * statistics and screenshots — comes from short `virsh` calls.
 */
export class LibvirtDriver implements HypervisorDriver {
  readonly kind = 'libvirt' as const;
  readonly emulator: string;
  readonly uefiFirmware: string | undefined;
  readonly virshBinary: string;
  readonly domainLogDir: string;
  readonly log: ((line: string) => void) | undefined;
  private readonly reconnectTimeoutMs: number;
  private reconnecting: Promise<void> | undefined;

  private constructor(
    readonly uri: string,
    private conn: Hypervisor,
    options: LibvirtDriverOptions,
  ) {
    this.emulator = options.emulator ?? '/usr/bin/qemu-system-x86_64';
    this.uefiFirmware = options.uefiFirmware ?? UEFI_CANDIDATES.find((p) => existsSync(p));
    this.virshBinary = options.virsh ?? 'virsh';
    this.domainLogDir = options.domainLogDir ?? '/var/log/libvirt/qemu';
    this.reconnectTimeoutMs = options.reconnectTimeoutMs ?? 15_000;
    this.log = options.log;
  }

  /** The current connection (replaced when a lost one is reopened). */
  get connection(): Hypervisor {
    return this.conn;
  }

  /** Opens the connection; rejects with `hypervisor_unavailable` when libvirtd does not answer within `timeoutMs`. */
  static async connect(options: LibvirtDriverOptions = {}, timeoutMs = 10_000): Promise<LibvirtDriver> {
    const uri = options.uri ?? 'qemu:///system';
    try {
      return new LibvirtDriver(uri, await openConnection(uri, timeoutMs), options);
    } catch (err) {
      throw new HypervisorError('hypervisor_unavailable', `libvirt at ${uri} is not reachable: ${err instanceof Error ? err.message : String(err)}`, { uri });
    }
  }

  /**
   * Runs `fn` on the connection. When it fails and the connection turns out
   * dead (libvirtd restarted, as a package upgrade does), the connection is
   * reopened — once, waiting up to `reconnectTimeoutMs` for libvirtd to come
   * back — and `fn` runs again; a libvirtd that does not come back is
   * `hypervisor_unavailable`. A refusal on a live connection is `fn`'s own
   * error.
   */
  async call<T>(fn: (connection: Hypervisor) => Promise<T>): Promise<T> {
    const used = this.conn;
    try {
      // A call on a connection whose daemon went away may never answer: it is bounded like any other failure.
      return await withTimeout(fn(used), CALL_TIMEOUT_MS);
    } catch (err) {
      if (isNoDomainError(err) || (this.conn === used && (await this.alive()))) throw err;
      if (this.conn === used) await this.reconnect(err);
      return fn(this.conn);
    }
  }

  private async alive(): Promise<boolean> {
    return withTimeout(this.conn.connectGetHostname(), 3000).then(
      () => true,
      () => false,
    );
  }

  private reconnect(cause: unknown): Promise<void> {
    this.reconnecting ??= (async () => {
      const why = cause instanceof Error ? cause.message : String(cause);
      this.log?.(`libvirt: the connection to ${this.uri} is lost (${why}); reconnecting`);
      const until = Date.now() + this.reconnectTimeoutMs;
      let last: unknown = cause;
      while (Date.now() < until) {
        try {
          const fresh = await openConnection(this.uri, Math.max(1000, Math.min(5000, until - Date.now())));
          const old = this.conn;
          this.conn = fresh;
          void old.connectClose().catch(() => undefined);
          this.log?.(`libvirt: reconnected to ${this.uri}`);
          return;
        } catch (err) {
          last = err;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      throw new HypervisorError(
        'hypervisor_unavailable',
        `lost the connection to libvirt at ${this.uri} and could not reconnect within ${Math.round(this.reconnectTimeoutMs / 1000)} s: ${last instanceof Error ? last.message : String(last)}`,
        { uri: this.uri },
      );
    })().finally(() => {
      this.reconnecting = undefined;
    });
    return this.reconnecting;
  }

  async define(spec: DomainSpec): Promise<Domain & { readonly xml: string }> {
    assertDomainName(spec.name);
    const xml = domainXml(spec, { emulator: this.emulator, uefiFirmware: this.uefiFirmware });
    try {
      await this.call((c) => c.domainLookupByName(spec.name));
      throw new HypervisorError('domain_exists', `a libvirt domain named ${spec.name} already exists`, { name: spec.name, uri: this.uri });
    } catch (err) {
      if (!isNoDomainError(err)) throw err;
    }
    return new LibvirtDomain(spec.name, xml, this);
  }

  /** Destroys (if running) and undefines (if persistent) the named domain; a domain that is not there is fine. */
  async destroyByName(name: string): Promise<void> {
    let domain;
    try {
      domain = await this.call((c) => c.domainLookupByName(name));
    } catch (err) {
      if (isNoDomainError(err)) return;
      throw err;
    }
    try {
      await domain.destroy();
    } catch {
      // not running (powered off meanwhile, or a defined domain at rest)
    }
    try {
      await domain.undefine();
    } catch {
      // transient: gone with the destroy
    }
  }

  /** Destroys and undefines every domain whose name starts with `prefix` (leftovers of a crashed daemon: transient domains outlive it). */
  async reap(prefix: string): Promise<string[]> {
    const reaped: string[] = [];
    for (const domain of await this.call((c) => c.connectListAllDomains())) {
      let name: string;
      try {
        name = await domain.getName();
      } catch {
        continue; // vanished while listing
      }
      if (!name.startsWith(prefix)) continue;
      this.log?.(`libvirt: reaping leftover domain ${name}`);
      await this.destroyByName(name);
      reaped.push(name);
    }
    return reaped;
  }

  async close(): Promise<void> {
    try {
      await this.conn.connectClose();
    } catch {
      // already closed
    }
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A new connection to `uri`, open (loaded lazily, so hosts without the native addon can still use the qemu driver). */
async function openConnection(uri: string, timeoutMs: number): Promise<Hypervisor> {
  const { Hypervisor } = await import('@unraid/libvirt');
  const connection = new Hypervisor({ uri });
  await withTimeout(connection.connectOpen(), timeoutMs);
  return connection;
}
