import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { grubCmdline, needsBoot, type AdaptationPlan } from '../../src/clouds/adaptation.js';
import { adaptationCommands } from '../../src/clouds/guest-adapt.js';
import { installedPackages } from '../../src/clouds/guest-fs.js';
import { initramfsModules } from '../../src/clouds/initramfs.js';
import { convertFlags, parseQemuImgProgress } from '../../src/clouds/qemu-img.js';
import { parseTdlOrThrow } from '../../src/tdl/index.js';
import type { RunResult } from '../../src/os/plugin.js';

const run = async (command: string, args: string[]): Promise<RunResult> => {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
};

/** A newc cpio archive of the given files (what initramfs tools write). */
function cpio(files: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const entry = (name: string, data: Buffer, mode: number) => {
    const hex = (n: number) => n.toString(16).padStart(8, '0');
    const header = '070701' + [ino++, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, name.length + 1, 0].map(hex).join('');
    const head = Buffer.concat([Buffer.from(header), Buffer.from(name + '\0')]);
    parts.push(head, Buffer.alloc((4 - (head.length % 4)) % 4), data, Buffer.alloc((4 - (data.length % 4)) % 4));
  };
  for (const [name, body] of Object.entries(files)) entry(name, Buffer.from(body), 0o100644);
  entry('TRAILER!!!', Buffer.alloc(0), 0);
  return Buffer.concat(parts);
}

describe('cloud plugin pieces', () => {
  it('reads qemu-img -p progress: the last value of a chunk of carriage-return-separated updates', () => {
    expect(parseQemuImgProgress('    (0.00/100%)\r    (1.10/100%)\r    (2.24/100%)\r')).toBe(2.24);
    expect(parseQemuImgProgress('    (100.00/100%)')).toBe(100);
    expect(parseQemuImgProgress('qemu-img: error')).toBeNull();
  });

  it('writes out of order except for stream-optimized or compressed output', () => {
    expect(convertFlags('raw', {})).toEqual(['-W']);
    expect(convertFlags('vpc', { subformat: 'fixed' })).toEqual(['-W']);
    expect(convertFlags('vmdk', { subformat: 'streamOptimized' })).toEqual([]);
    expect(convertFlags('qcow2', { compress: 'on' })).toEqual([]);
  });

  it('lists installed packages from a dpkg status file, not removed or half-installed ones', () => {
    const status = 'Package: a\nStatus: install ok installed\n\nPackage: b\nStatus: deinstall ok config-files\n\nPackage: c\nStatus: install ok half-configured\n\nPackage: d\nVersion: 1\nStatus: install ok installed\n';
    expect([...installedPackages(status)]).toEqual(['a', 'd']);
  });

  it('finds the kernel command line in a GRUB configuration', () => {
    expect(grubCmdline("menuentry 'Debian' {\n  linux /boot/vmlinuz-6.1 root=UUID=x ro console=ttyS0,115200n8\n  initrd /boot/initrd.img\n}")).toBe('root=UUID=x ro console=ttyS0,115200n8');
    expect(grubCmdline('set timeout=1')).toBeNull();
  });

  it('lists the modules of an initramfs made of an uncompressed early archive followed by a compressed one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'h12-initrd-'));
    try {
      const early = cpio({ 'kernel/x86/microcode/GenuineIntel.bin': 'ucode' });
      const main = gzipSync(cpio({ 'usr/lib/modules/6.1/kernel/drivers/net/ethernet/amazon/ena/ena.ko': 'x', 'usr/lib/modules/6.1/kernel/drivers/hv/hv-vmbus.ko.xz': 'y', 'etc/x': 'z' }));
      const file = join(dir, 'initrd.img');
      writeFileSync(file, Buffer.concat([early, Buffer.alloc(512), main]));
      expect([...(await initramfsModules({ run }, file))].sort()).toEqual(['ena', 'hv_vmbus']);
      writeFileSync(file, main);
      expect([...(await initramfsModules({ run }, file))].sort()).toEqual(['ena', 'hv_vmbus']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('boots only for what is missing, with a job that adds repositories, initramfs modules and the serial console', () => {
    const template = parseTdlOrThrow('<template><name>t</name><os><name>Debian</name><version>12</version><arch>x86_64</arch><install type="url"><url>http://deb.debian.org/debian</url></install></os></template>');
    const nothing: AdaptationPlan = { missingPackages: [], repositories: [], missingModules: [], modules: {}, addSerialConsole: false, kernelCmdline: 'ro', writeFiles: [] };
    expect(needsBoot(nothing)).toBe(false);
    const plan: AdaptationPlan = { ...nothing, missingPackages: ['cloud-init'], repositories: [{ name: 'x', url: 'http://example.invalid/debian', signed: false, persisted: true, sslverify: true }], missingModules: ['ena'], addSerialConsole: true };
    expect(needsBoot(plan)).toBe(true);
    const { precommands, commands } = adaptationCommands(template, plan);
    expect(precommands.map((c) => c.name)).toEqual(['target-repositories']);
    const text = (c: { content: { type: string } }) => ('data' in c.content ? (c.content.data as Buffer).toString() : '');
    expect(text(precommands[0]!)).toContain("printf '%s\\n' 'deb [trusted=yes] http://example.invalid/debian bookworm main' > /etc/apt/sources.list.d/imagefactory-x.list");
    expect(commands.map((c) => c.name)).toEqual(['target-initramfs-modules', 'target-serial-console', 'target-cloud-init-clean']);
    expect(text(commands[0]!)).toContain('update-initramfs -u -k all');
    expect(text(commands[1]!)).toContain('console=ttyS0,115200n8');
  });
});
