/**
 * A real but tiny guest for hypervisor tests: the installed Debian kernel and
 * a busybox initramfs that loads the virtio modules of the same kernel
 * version, reads `/answer.cfg` (appended as a second cpio archive, the way an
 * installer's answer file is appended to its initrd) and then behaves like an
 * install that finishes, stalls or never ends. Boots under TCG in seconds.
 *
 * Needs the packages linux-image-amd64, busybox-static and cpio.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';

/** Printed on the console by `mode=ok` after its disk writes, right before powering off. */
export const GUEST_DONE_MARKER = 'IMAGEFACTORY-TESTGUEST-DONE';
/** Written by `mode=ok` at the start of /dev/vda, followed by the answer's `tag`, so a test can tell whose disk it is. */
export const GUEST_DISK_MARKER = 'IMAGEFACTORY-TESTGUEST-DISK';
/** Kernel command line for the test guest. */
export const GUEST_CMDLINE = 'console=ttyS0 panic=-1 quiet';

/**
 * - `ok`: writes `sizeMb` MiB to /dev/vda, then the disk marker and `tag` at its start, prints the
 *   console marker, powers off.
 * - `stall`: prints a line, then sleeps forever without any I/O.
 * - `busy`: writes to /dev/vda in an endless loop (never powers off).
 * - `net`: no disk I/O, but pings the user-network gateway with large packets forever.
 */
export type GuestMode = 'ok' | 'stall' | 'busy' | 'net';

export interface GuestAnswer {
  mode: GuestMode;
  sizeMb?: number;
  /** Written after the disk marker by `mode=ok` (letters, digits, `-`, `_`). */
  tag?: string;
}

export interface TestGuest {
  kernelVersion: string;
  kernel: string;
  /** The initramfs without an answer file (an absent answer file means `mode=ok`, 4 MiB). */
  initrd: string;
  /** Temp directory holding everything built for this test run. */
  dir: string;
  /** Modules loaded by /init, in load order. */
  modules: string[];
}

/** Virtio block and PCI transport (the install disk), and virtio-net for `mode=net`; dependencies are added from modules.dep. */
const WANTED_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_net'];

let cached: Promise<TestGuest> | undefined;

/** Builds the guest once per test process (a few hundred milliseconds) into a fresh temp directory. */
export function buildTestGuest(): Promise<TestGuest> {
  cached ??= build();
  return cached;
}

/** Removes the temp directory of this process's guest. */
export async function removeTestGuest(): Promise<void> {
  if (!cached) return;
  const guest = await cached.catch(() => undefined);
  cached = undefined;
  answerInitrds.clear();
  if (guest) await rm(guest.dir, { recursive: true, force: true });
}

/** The newest kernel in /boot whose modules are installed. */
export function findKernel(): { version: string; kernel: string } {
  const versions = readdirSync('/boot')
    .filter((f) => f.startsWith('vmlinuz-'))
    .map((f) => f.slice('vmlinuz-'.length))
    .filter((v) => existsSync(join('/lib/modules', v, 'modules.dep')))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const version = versions.at(-1);
  if (!version) throw new Error('no /boot/vmlinuz-* with modules in /lib/modules (install linux-image-amd64)');
  return { version, kernel: join('/boot', `vmlinuz-${version}`) };
}

const moduleName = (path: string) => basename(path).replace(/\.ko(\.(xz|gz|zst))?$/, '').replace(/-/g, '_');

/** Module files to load, dependencies first. Built-in modules are skipped. */
export function resolveModules(version: string, wanted: string[]): Array<{ name: string; file: string }> {
  const root = join('/lib/modules', version);
  const deps = new Map<string, { file: string; deps: string[] }>();
  for (const line of readFileSync(join(root, 'modules.dep'), 'utf8').split('\n')) {
    const [file, rest] = line.split(':');
    if (!file || rest === undefined) continue;
    deps.set(moduleName(file), { file: join(root, file), deps: rest.trim() ? rest.trim().split(/\s+/).map(moduleName) : [] });
  }
  let builtin = '';
  try {
    builtin = readFileSync(join(root, 'modules.builtin'), 'utf8');
  } catch {
    // none listed
  }
  const builtins = new Set(builtin.split('\n').filter(Boolean).map(moduleName));
  const order: Array<{ name: string; file: string }> = [];
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    if (builtins.has(name)) return;
    const entry = deps.get(name);
    if (!entry) throw new Error(`kernel ${version} has no module ${name}`);
    for (const d of entry.deps) visit(d);
    order.push({ name, file: entry.file });
  };
  for (const m of wanted) visit(m);
  return order;
}

function initScript(modules: string[]): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in ${modules.join(' ')}; do
  insmod /lib/modules/$m.ko || echo "testguest: insmod $m failed"
done
mode=ok
size_mb=4
tag=none
[ -f /answer.cfg ] && . /answer.cfg
echo "testguest: mode=$mode size_mb=$size_mb"
wait_disk() {
  i=0
  while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
  [ -b /dev/vda ] || echo "testguest: no /dev/vda"
}
case "$mode" in
  ok)
    wait_disk
    dd if=/dev/zero of=/dev/vda bs=1M count=$size_mb conv=fsync 2>/dev/null
    echo "${GUEST_DISK_MARKER} $tag" | dd of=/dev/vda conv=fsync 2>/dev/null
    sync
    echo "${GUEST_DONE_MARKER} wrote $size_mb MiB"
    poweroff -f
    ;;
  stall)
    echo "testguest: stalling without I/O"
    while :; do sleep 3600; done
    ;;
  busy)
    wait_disk
    echo "testguest: writing to /dev/vda forever"
    while :; do dd if=/dev/urandom of=/dev/vda bs=64k count=16 conv=fsync 2>/dev/null; done
    ;;
  net)
    ip link set lo up
    ip link set eth0 up
    ip addr add 10.0.2.15/24 dev eth0
    echo "testguest: pinging 10.0.2.2 forever"
    while :; do ping -c 50 -i 0.1 -s 1400 10.0.2.2 >/dev/null 2>&1; done
    ;;
esac
echo "testguest: unknown mode $mode"
poweroff -f
`;
}

function run(command: string, args: string[], opts: { cwd?: string; input?: string; stdoutTo?: string } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${command} ${args.join(' ')} failed (${code}): ${err}`))));
    child.stdin.end(opts.input ?? '');
  });
}

async function listTree(dir: string, prefix = '.'): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = `${prefix}/${entry.name}`;
    out.push(rel);
    if (entry.isDirectory()) out.push(...(await listTree(join(dir, entry.name), rel)));
  }
  return out;
}

/** A newc cpio archive of a directory (via the `cpio` tool). */
async function cpioOf(dir: string): Promise<Buffer> {
  const files = await listTree(dir);
  return run('cpio', ['-o', '-H', 'newc', '--quiet', '--owner=0:0'], { cwd: dir, input: `${files.join('\n')}\n` });
}

async function copyModule(src: string, dest: string): Promise<void> {
  if (src.endsWith('.ko')) return copyFile(src, dest);
  let data: Buffer;
  if (src.endsWith('.ko.xz')) data = await run('/bin/busybox', ['xzcat', src]);
  else if (src.endsWith('.ko.gz')) data = gunzipSync(readFileSync(src));
  else if (src.endsWith('.ko.zst')) data = await run('zstd', ['-dc', src]);
  else throw new Error(`unknown module compression: ${src}`);
  await writeFile(dest, data);
}

async function build(): Promise<TestGuest> {
  const { version, kernel } = findKernel();
  if (!existsSync('/bin/busybox')) throw new Error('/bin/busybox is missing (install busybox-static)');
  const dir = await mkdtemp(join(tmpdir(), 'imagefactory-testguest-'));
  const root = join(dir, 'root');
  for (const d of ['bin', 'proc', 'sys', 'dev', 'lib/modules']) await mkdir(join(root, d), { recursive: true });
  await copyFile('/bin/busybox', join(root, 'bin/busybox'));
  await chmod(join(root, 'bin/busybox'), 0o755);
  const modules = resolveModules(version, WANTED_MODULES);
  for (const m of modules) await copyModule(m.file, join(root, 'lib/modules', `${m.name}.ko`));
  await writeFile(join(root, 'init'), initScript(modules.map((m) => m.name)), { mode: 0o755 });
  const initrd = join(dir, 'initrd.cpio');
  await writeFile(initrd, await cpioOf(root));
  await rm(root, { recursive: true, force: true });
  return { kernelVersion: version, kernel, initrd, dir, modules: modules.map((m) => m.name) };
}

/**
 * Appends a second newc archive holding `files` (name → content) to an
 * initramfs: the kernel unpacks concatenated archives in order, so these
 * files appear in the guest's root next to the base ones.
 */
export async function appendCpio(baseInitrd: string, files: Record<string, string>, out: string): Promise<string> {
  const staging = await mkdtemp(join(tmpdir(), 'imagefactory-testguest-answer-'));
  try {
    for (const [name, content] of Object.entries(files)) await writeFile(join(staging, name), content);
    const extra = await cpioOf(staging);
    const h = await open(out, 'w');
    try {
      await h.writeFile(readFileSync(baseInitrd));
      await h.writeFile(extra);
    } finally {
      await h.close();
    }
    return out;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** The guest's initramfs with `/answer.cfg` for the given behaviour, written to `out` (by default next to the base). */
export function initrdWithAnswer(guest: TestGuest, answer: GuestAnswer, out?: string): Promise<string> {
  if (answer.tag !== undefined && !/^[\w-]+$/.test(answer.tag)) throw new Error(`tag ${answer.tag} must be letters, digits, - and _`);
  const cfg = `mode=${answer.mode}\nsize_mb=${answer.sizeMb ?? 4}\ntag=${answer.tag ?? 'none'}\n`;
  if (out) return appendCpio(guest.initrd, { 'answer.cfg': cfg }, out);
  const target = join(guest.dir, `initrd-${answer.mode}-${answer.sizeMb ?? 4}-${answer.tag ?? 'none'}.cpio`);
  let made = answerInitrds.get(target);
  if (!made) {
    made = appendCpio(guest.initrd, { 'answer.cfg': cfg }, target);
    answerInitrds.set(target, made);
  }
  return made;
}

const answerInitrds = new Map<string, Promise<string>>();

/** A sparse raw disk of `sizeMiB`. */
export async function makeDisk(path: string, sizeMiB: number): Promise<string> {
  const h = await open(path, 'w');
  try {
    await h.truncate(sizeMiB * 1024 * 1024);
  } finally {
    await h.close();
  }
  return path;
}
