/** The hypervisor layer's pieces without a guest: formats, command line, XML, driver choice, the watchdog's rules on a scripted domain. */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { HypervisorError, InstallError } from '../../src/hypervisor/errors.js';
import { domainXml, LibvirtDriver } from '../../src/hypervisor/libvirt.js';
import { PcapByteCounter } from '../../src/hypervisor/pcap.js';
import { encodePng, isPng, parsePpm, ppmToPng } from '../../src/hypervisor/png.js';
import { qemuCommandLine, QemuDriver } from '../../src/hypervisor/qemu.js';
import { openHypervisor } from '../../src/hypervisor/select.js';
import type { ActivitySample, Domain, DomainSpec, GuestEnd } from '../../src/hypervisor/types.js';
import { activityFromDomstats, parseDomstats } from '../../src/hypervisor/virsh.js';
import { lastLine, watchInstall } from '../../src/hypervisor/watchdog.js';
import { LIBVIRT_URI } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'imagefactory-hvparts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const spec = (over: Partial<DomainSpec> = {}): DomainSpec => ({
  name: 'imagefactory-abc-install',
  memoryMiB: 512,
  vcpus: 1,
  accel: 'tcg',
  disks: [{ path: '/var/img/disk,1.qcow2', format: 'qcow2' }, { path: '/var/img/seed.raw', format: 'raw', readonly: true }],
  kernel: { path: '/b/vmlinuz', initrd: '/b/initrd', cmdline: 'console=ttyS0 ks=file:/ks.cfg' },
  network: 'user',
  serialLog: '/var/log/if/console.log',
  ...over,
});

describe('PNG and PPM', () => {
  it('converts a binary PPM to a PNG whose pixels survive', () => {
    const ppm = Buffer.concat([Buffer.from('P6\n# a comment\n2 2\n255\n', 'latin1'), Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])]);
    const png = ppmToPng(ppm);
    expect(isPng(png)).toBe(true);
    expect(png.readUInt32BE(16)).toBe(2); // width
    expect(png.readUInt32BE(20)).toBe(2); // height
    const idatAt = png.indexOf('IDAT');
    const raw = inflateSync(png.subarray(idatAt + 4, idatAt + 4 + png.readUInt32BE(idatAt - 4)));
    expect([...raw]).toEqual([0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 10, 20, 30]);
  });

  it('scales 16-bit PPM samples and refuses other formats', () => {
    const ppm = Buffer.concat([Buffer.from('P6 1 1 65535\n', 'latin1'), Buffer.from([0xff, 0xff, 0x80, 0x00, 0, 0])]);
    expect([...parsePpm(ppm).rgb]).toEqual([255, 128, 0]);
    expect(() => parsePpm(Buffer.from('P3 1 1 255\n1 2 3'))).toThrow(/P6/);
    expect(() => encodePng({ width: 1, height: 1, rgb: Buffer.from([1, 2, 3]) })).not.toThrow();
  });
});

describe('network byte counting from a filter-dump capture', () => {
  it('sums the original frame lengths of complete records, reading on from where it stopped', async () => {
    const path = join(dir, 'net.pcap');
    const counter = new PcapByteCounter(path);
    expect(await counter.read()).toBe(0); // no file yet
    const header = Buffer.alloc(24);
    header.writeUInt32LE(0xa1b2c3d4, 0);
    const record = (orig: number, incl: number) => {
      const r = Buffer.alloc(16 + incl);
      r.writeUInt32LE(incl, 8);
      r.writeUInt32LE(orig, 12);
      return r;
    };
    const second = record(1500, 64);
    writeFileSync(path, Buffer.concat([header, record(1442, 64), second.subarray(0, 30)]));
    expect(await counter.read()).toBe(1442); // the half-written record waits
    writeFileSync(path, Buffer.concat([header, record(1442, 64), second, record(60, 60)]));
    expect(await counter.read()).toBe(1442 + 1500 + 60);
  });
});

describe('virsh domstats', () => {
  it('sums read and write requests over disks and bytes over interfaces', () => {
    const stats = parseDomstats(
      "Domain: 'x'\n  block.count=2\n  block.0.rd.reqs=4\n  block.0.wr.reqs=10\n  block.0.rd.bytes=999\n  block.1.rd.reqs=1\n  net.count=1\n  net.0.rx.bytes=100\n  net.0.tx.bytes=50\n  net.0.rx.pkts=3\n",
    );
    expect(activityFromDomstats(stats)).toEqual({ diskRequests: 15, netBytes: 150 });
  });
});

describe('the qemu command line', () => {
  it('has every device from the spec and nothing else', () => {
    const args = qemuCommandLine(spec(), { qmpSocket: '/run/if/q.sock', netDump: '/run/if/n.pcap' });
    expect(args.join(' ')).toBe(
      [
        '-name imagefactory-abc-install -machine pc -accel tcg,thread=multi -m 512 -smp 1 -nodefaults -no-user-config',
        '-drive file=/var/img/disk,,1.qcow2,format=qcow2,if=virtio,index=0',
        '-drive file=/var/img/seed.raw,format=raw,if=virtio,index=1,readonly=on',
        '-kernel /b/vmlinuz -initrd /b/initrd -append console=ttyS0 ks=file:/ks.cfg',
        '-serial file:/var/log/if/console.log -device VGA -display none',
        '-netdev user,id=net0 -device virtio-net-pci,netdev=net0 -object filter-dump,id=netdump0,netdev=net0,file=/run/if/n.pcap,maxlen=64',
        '-qmp unix:/run/if/q.sock,server=on,wait=off -no-reboot',
      ].join(' '),
    );
  });

  it('uses KVM with the host CPU, boots a CD-ROM before the disk, and adds the channel port', () => {
    const args = qemuCommandLine(spec({ accel: 'kvm', kernel: undefined, cdrom: '/iso/x.iso', network: 'none', channelLog: '/c.log' }), { qmpSocket: '/q' });
    const line = args.join(' ');
    expect(line).toContain('-accel kvm -cpu host');
    expect(line).toContain('-drive file=/iso/x.iso,format=raw,if=ide,index=2,media=cdrom,readonly=on');
    expect(line).toContain('-boot order=dc');
    expect(line).toContain('-serial file:/var/log/if/console.log -serial file:/c.log');
    expect(line).not.toContain('-netdev');
  });

  it('refuses names that are not safe in option strings and paths', async () => {
    await expect(new QemuDriver({ runDir: dir }).define(spec({ name: 'bad,name' }))).rejects.toMatchObject({ code: 'invalid_domain_spec' });
    await expect(new QemuDriver({ runDir: dir }).define(spec({ name: '../x' }))).rejects.toMatchObject({ code: 'invalid_domain_spec' });
  });

  it('refuses UEFI when no firmware is installed', async () => {
    const driver = new QemuDriver({ runDir: dir, uefiFirmware: undefined });
    if (driver.uefiFirmware === undefined) await expect(driver.define(spec({ firmware: 'uefi' }))).rejects.toMatchObject({ code: 'invalid_domain_spec' });
  });
});

describe('the libvirt domain XML', () => {
  const xml = domainXml(spec({ cdrom: '/iso/a&b.iso', channelLog: '/c.log' }), { emulator: '/usr/bin/qemu-system-x86_64' });

  it('is a qemu (TCG) domain with ACPI, destroyed on power-off, reboot and crash', () => {
    expect(xml).toMatch(/^<domain type='qemu'>/);
    expect(xml).toContain('<features><acpi/></features>');
    expect(xml).toContain('<on_poweroff>destroy</on_poweroff>');
    expect(xml).toContain('<on_reboot>destroy</on_reboot>');
    expect(xml).toContain('<on_crash>destroy</on_crash>');
  });

  it('has the kernel, virtio disks, the CD-ROM, user networking, both serial files, video and VNC', () => {
    expect(xml).toContain('<kernel>/b/vmlinuz</kernel>');
    expect(xml).toContain('<cmdline>console=ttyS0 ks=file:/ks.cfg</cmdline>');
    expect(xml).toContain("<source file='/var/img/disk,1.qcow2'/>\n      <target dev='vda' bus='virtio'/>");
    expect(xml).toContain("<target dev='vdb' bus='virtio'/>\n      <readonly/>");
    expect(xml).toContain("<source file='/iso/a&amp;b.iso'/>");
    expect(xml).toContain("<interface type='user'>\n      <model type='virtio'/>");
    expect(xml).toContain("<serial type='file'>\n      <source path='/var/log/if/console.log'/>\n      <target port='0'/>");
    expect(xml).toContain("<source path='/c.log'/>\n      <target port='1'/>");
    expect(xml).toContain("<video><model type='vga'/></video>");
    expect(xml).toContain("<graphics type='vnc' listen='127.0.0.1' autoport='yes'/>");
  });

  it('is a kvm domain with the host CPU under KVM', () => {
    const kvm = domainXml(spec({ accel: 'kvm' }), { emulator: '/usr/bin/qemu-system-x86_64' });
    expect(kvm).toMatch(/^<domain type='kvm'>/);
    expect(kvm).toContain("<cpu mode='host-passthrough'/>");
  });
});

describe('choosing the driver', () => {
  const dead = 'qemu+unix:///system?socket=/nonexistent/libvirt-sock';

  it('auto falls back to qemu when libvirt does not answer, and says why', async () => {
    const lines: string[] = [];
    const { driver, accel } = await openHypervisor({ hypervisor: 'auto', accel: 'tcg', libvirtUri: dead, log: (l) => lines.push(l) });
    expect(driver.kind).toBe('qemu');
    expect(accel).toBe('tcg');
    expect(lines.join('\n')).toMatch(/qemu driver \(auto: libvirt at .* is not reachable/);
  });

  it('an explicit libvirt that does not answer is an error, not a fallback', async () => {
    await expect(openHypervisor({ hypervisor: 'libvirt', accel: 'tcg', libvirtUri: dead })).rejects.toMatchObject({ code: 'hypervisor_unavailable' });
  });

  it('auto takes libvirt when it answers (libvirtd must be running)', async () => {
    const { driver } = await openHypervisor({ hypervisor: 'auto', accel: 'auto', libvirtUri: LIBVIRT_URI });
    expect(driver.kind).toBe('libvirt');
    expect(driver).toBeInstanceOf(LibvirtDriver);
    await driver.close();
  });

  it('qemu is taken as asked', async () => {
    const { driver } = await openHypervisor({ hypervisor: 'qemu', accel: 'tcg', libvirtUri: LIBVIRT_URI });
    expect(driver.kind).toBe('qemu');
  });
});

/** A domain whose counters and power state follow a script over time. */
class ScriptedDomain implements Domain {
  readonly name = 'imagefactory-scripted-install';
  destroyed = 0;
  screenshots: string[] = [];
  private readonly born = Date.now();
  constructor(
    private readonly script: (elapsedMs: number) => ActivitySample & { off?: boolean },
    private readonly canScreenshot = true,
    private readonly end: GuestEnd | null = { clean: true, description: 'powered off' },
    private readonly poll: () => void = () => undefined,
  ) {}
  async start(): Promise<void> {}
  async isOff(): Promise<boolean> {
    this.poll();
    return this.destroyed > 0 || this.script(Date.now() - this.born).off === true;
  }
  async ending(): Promise<GuestEnd | null> {
    return this.end;
  }
  async activity(): Promise<ActivitySample> {
    const { diskRequests, netBytes } = this.script(Date.now() - this.born);
    return { diskRequests, netBytes };
  }
  async screenshot(path: string): Promise<void> {
    if (!this.canScreenshot) throw new Error('no display');
    writeFileSync(path, encodePng({ width: 1, height: 1, rgb: Buffer.from([0, 0, 0]) }));
    this.screenshots.push(path);
  }
  async destroy(): Promise<void> {
    this.destroyed++;
  }
}

describe('the install watchdog', () => {
  const serialLog = join(dir, 'console.log');
  writeFileSync(serialLog, `${'x'.repeat(5000)}\nBooting\n\x1b[1mInstalling packages\x1b[0m\r\n  \n`);
  const base = { artifactsDir: join(dir, 'artifacts'), serialLog, sampleMs: 100 };

  it('fails guest_crashed when the guest ended otherwise than by its own power-off, never resolving', async () => {
    const d = new ScriptedDomain((t) => ({ diskRequests: Math.floor(t / 50), netBytes: 0, off: t > 200 }), true, { clean: false, description: 'qemu was killed by SIGSEGV' });
    const err = (await watchInstall(d, { ...base, stallSeconds: 5, deadline: Date.now() + 5000 }).catch((e: unknown) => e)) as InstallError;
    expect(err).toBeInstanceOf(InstallError);
    expect(err.code).toBe('guest_crashed');
    expect(err.message).toMatch(/^the guest did not power itself off: qemu was killed by SIGSEGV after [\d.]+ s; last console line: "Installing packages"$/);
    expect(err.details.ending).toBe('qemu was killed by SIGSEGV');
    expect(d.destroyed).toBe(1);
  });

  it("takes the kernel's power-off on the console over a hypervisor that reports the guest as killed", async () => {
    const poweredOff = join(dir, 'powered-off.log');
    writeFileSync(poweredOff, '[   41.2] systemd-shutdown[1]: Powering off.\r\n[   41.3] reboot: Power down\r\n');
    const d = new ScriptedDomain((t) => ({ diskRequests: Math.floor(t / 50), netBytes: 0, off: t > 200 }), true, { clean: false, description: 'libvirt ended the domain with reason=daemon' });
    const lines: string[] = [];
    const result = await watchInstall(d, { ...base, serialLog: poweredOff, stallSeconds: 5, deadline: Date.now() + 5000, log: (l) => lines.push(l) });
    expect(result.elapsedMs).toBeGreaterThan(200);
    expect(lines.join('\n')).toMatch(/the hypervisor reported libvirt ended the domain with reason=daemon, but the guest's kernel had powered it off/);
    expect(d.destroyed).toBe(1);
  });

  it('ends the watch with hypervisor_unavailable instead of waiting for a stall', async () => {
    const d = new ScriptedDomain(() => ({ diskRequests: 1, netBytes: 0 }), true, null, () => {
      throw new HypervisorError('hypervisor_unavailable', 'lost the connection to libvirt');
    });
    const started = Date.now();
    const err = await watchInstall(d, { ...base, stallSeconds: 60, deadline: Date.now() + 60_000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'hypervisor_unavailable' });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(d.destroyed).toBe(1);
  });

  it('resolves when the guest powers off, and still destroys (undefines) the domain', async () => {
    const d = new ScriptedDomain((t) => ({ diskRequests: Math.floor(t / 50), netBytes: 0, off: t > 400 }));
    const r = await watchInstall(d, { ...base, stallSeconds: 5, deadline: Date.now() + 5000 });
    expect(r.elapsedMs).toBeGreaterThan(300);
    expect(d.destroyed).toBe(1);
    expect(d.screenshots).toEqual([]);
  });

  it('counts network traffic only above the noise floor per sample', async () => {
    // 1000 bytes a sample (≈ 10 kB/s at 100 ms) with a 4096-byte floor: noise, so it stalls.
    const quiet = new ScriptedDomain((t) => ({ diskRequests: 7, netBytes: Math.floor(t / 100) * 1000 }));
    const err = await watchInstall(quiet, { ...base, stallSeconds: 1, deadline: Date.now() + 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InstallError);
    expect((err as InstallError).code).toBe('install_stalled');
    // 10000 bytes a sample is activity: it runs into the deadline instead.
    const busy = new ScriptedDomain((t) => ({ diskRequests: 7, netBytes: Math.floor(t / 100) * 10_000 }));
    const err2 = await watchInstall(busy, { ...base, stallSeconds: 1, deadline: Date.now() + 2000 }).catch((e: unknown) => e);
    expect((err2 as InstallError).code).toBe('timeout');
    expect(quiet.destroyed).toBe(1);
    expect(busy.destroyed).toBe(1);
  });

  it('fires the stall within the sample period of its limit and reports the console tail', async () => {
    const d = new ScriptedDomain(() => ({ diskRequests: 3, netBytes: 0 }));
    const started = Date.now();
    const err = (await watchInstall(d, { ...base, stallSeconds: 1, deadline: Date.now() + 10_000 }).catch((e: unknown) => e)) as InstallError;
    const took = Date.now() - started;
    expect(err.code).toBe('install_stalled');
    expect(took).toBeGreaterThanOrEqual(1000);
    expect(took).toBeLessThan(1500);
    expect(err.message).toBe('no disk or network activity for 1 s; last console line: "Installing packages"');
    expect(err.details.serialTail.length).toBe(4096 - '\x1b[1m\x1b[0m\r'.length);
    expect(err.details.serialTail.endsWith('Booting\nInstalling packages\n  \n')).toBe(true);
    expect(readFileSync(err.details.serialTailFile!, 'utf8')).toBe(err.details.serialTail);
    expect(isPng(readFileSync(err.details.screenshot!))).toBe(true);
    expect(d.destroyed).toBe(1);
  });

  it('still reports (without a screenshot) when the screenshot fails, and when there is no console log', async () => {
    const d = new ScriptedDomain(() => ({ diskRequests: 0, netBytes: 0 }), false);
    const err = (await watchInstall(d, { ...base, serialLog: join(dir, 'absent.log'), stallSeconds: 10, deadline: Date.now() + 300 }).catch(
      (e: unknown) => e,
    )) as InstallError;
    expect(err.code).toBe('timeout');
    expect(err.details.screenshot).toBeUndefined();
    expect(err.details.screenshotError).toBe('no display');
    expect(err.details.serialTail).toBe('');
    expect(err.message).toMatch(/the console is empty$/);
    expect(d.destroyed).toBe(1);
  });

  it('rejects cancelled at once when aborted, and when the signal is already aborted', async () => {
    const d = new ScriptedDomain((t) => ({ diskRequests: t, netBytes: 0 }));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 250);
    const started = Date.now();
    const err = (await watchInstall(d, { ...base, sampleMs: 1000, stallSeconds: 60, deadline: Date.now() + 60_000, signal: controller.signal }).catch(
      (e: unknown) => e,
    )) as InstallError;
    expect(err.code).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(d.destroyed).toBe(1);

    const d2 = new ScriptedDomain(() => ({ diskRequests: 0, netBytes: 0 }));
    const err2 = (await watchInstall(d2, { ...base, stallSeconds: 60, deadline: Date.now() + 60_000, signal: AbortSignal.abort() }).catch((e: unknown) => e)) as InstallError;
    expect(err2.code).toBe('cancelled');
    expect(d2.destroyed).toBe(1);
  });

  it('takes the last non-blank console line', () => {
    expect(lastLine('a\nb\n\n  \n')).toBe('b');
    expect(lastLine('')).toBe('');
    expect(lastLine('y'.repeat(300))).toHaveLength(200);
  });

  it('leaves the artifacts in the artifacts directory', () => {
    expect(existsSync(base.artifactsDir)).toBe(true);
  });
});
