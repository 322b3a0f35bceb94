import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LibvirtDriver } from '../../src/hypervisor/libvirt.js';
import { listQemuProcesses } from '../../src/hypervisor/processes.js';
import { QemuDriver } from '../../src/hypervisor/qemu.js';
import { DOMAIN_PREFIX, type DomainSpec, type HypervisorDriver } from '../../src/hypervisor/types.js';
import { buildTestGuest, GUEST_CMDLINE, initrdWithAnswer, makeDisk, type GuestAnswer, type TestGuest } from '../guest/build-guest.js';

export type DriverKind = 'qemu' | 'libvirt';
/** libvirtd the tests use; overridable for hosts where it listens elsewhere. */
export const LIBVIRT_URI = process.env['IMAGEFACTORY_TEST_LIBVIRT_URI'] ?? 'qemu:///system';

/** A name prefix unique to this test run and driver, so leftovers are ours alone. */
export function testPrefix(kind: DriverKind): string {
  return `${DOMAIN_PREFIX}t${randomBytes(3).toString('hex')}-${kind}-`;
}

/** Opens the driver; for libvirt an unreachable libvirtd is an error (the tests must fail, not skip). */
export async function openDriver(kind: DriverKind, runDir: string): Promise<HypervisorDriver> {
  if (kind === 'qemu') return new QemuDriver({ runDir });
  return LibvirtDriver.connect({ uri: LIBVIRT_URI });
}

/** Domain names in libvirt (all states), by `virsh list --all --name`. */
export function libvirtDomainNames(): string[] {
  const r = spawnSync('virsh', ['-q', '-c', LIBVIRT_URI, 'list', '--all', '--name'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`virsh list failed: ${r.stderr}`);
  return r.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
}

/** Every qemu process (any starter) and libvirt domain whose name starts with `prefix`. */
export function leftovers(prefix: string, kind: DriverKind): string[] {
  const found = listQemuProcesses()
    .filter((p) => p.name.startsWith(prefix))
    .map((p) => `process ${p.pid} (${p.name})`);
  if (kind === 'libvirt') found.push(...libvirtDomainNames().filter((n) => n.startsWith(prefix)).map((n) => `domain ${n}`));
  return found;
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Waits for the guest's console to show `text` while its install watch runs:
 * fails at once, saying how, if the watch ends first, and with the console
 * tail if the text never comes, so that a failure says what the guest did.
 */
export async function waitForConsole(serialLog: string, text: string, watch: Promise<unknown>, timeoutMs: number): Promise<void> {
  let ended: string | null = null;
  watch.then(
    () => (ended = 'the watch resolved'),
    (e: unknown) => (ended = `the watch failed: ${e instanceof Error ? e.message : String(e)}`),
  );
  const tail = () => (existsSync(serialLog) ? readFileSync(serialLog, 'utf8').slice(-1500) : '(no console log)');
  try {
    await waitFor(`"${text}" on the console`, () => {
      if (consoleHas(serialLog, text)) return true;
      if (ended) throw new Error(`${ended} before "${text}" was on the console; console tail:\n${tail()}`);
      return false;
    }, timeoutMs);
  } catch (e) {
    if (ended || !(e instanceof Error) || !e.message.startsWith('timed out')) throw e;
    throw new Error(`${e.message}; console tail:\n${tail()}`);
  }
}

export function consoleHas(serialLog: string, text: string): boolean {
  return existsSync(serialLog) && readFileSync(serialLog, 'utf8').includes(text);
}

export interface GuestSetup {
  spec: DomainSpec;
  dir: string;
  disk: string;
}

/** A spec for the busybox test guest with its own directory, disk and console log. */
export async function guestSpec(guest: TestGuest, name: string, answer: GuestAnswer, opts: { network?: 'user' | 'none'; memoryMiB?: number } = {}): Promise<GuestSetup> {
  const dir = join(guest.dir, name);
  await mkdir(dir, { recursive: true });
  const disk = await makeDisk(join(dir, 'disk.raw'), 64);
  const initrd = await initrdWithAnswer(guest, answer);
  const spec: DomainSpec = {
    name,
    memoryMiB: opts.memoryMiB ?? 256,
    vcpus: 1,
    accel: 'tcg',
    disks: [{ path: disk, format: 'raw' }],
    kernel: { path: guest.kernel, initrd, cmdline: GUEST_CMDLINE },
    network: opts.network ?? 'none',
    serialLog: join(dir, 'console.log'),
  };
  return { spec, dir, disk };
}

export { buildTestGuest };
