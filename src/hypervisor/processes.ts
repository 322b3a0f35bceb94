import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';

export interface QemuProcess {
  pid: number;
  /** The guest name given with `-name`. */
  name: string;
  /**
   * `qemu`: started by the qemu driver (`-name NAME`); `libvirt`: started by
   * libvirtd (`-name guest=NAME,debug-threads=on`), which only libvirt may stop.
   */
  startedBy: 'qemu' | 'libvirt';
}

/**
 * Every running `qemu-system-*` process and its guest name, from
 * /proc/<pid>/cmdline (Linux). Zombies have an empty command line and are
 * not listed.
 */
export function listQemuProcesses(): QemuProcess[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const found: QemuProcess[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // exited meanwhile
    }
    if (!argv[0] || !basename(argv[0]).startsWith('qemu-system-')) continue;
    const at = argv.indexOf('-name');
    const value = at >= 0 ? argv[at + 1] : undefined;
    if (!value) continue;
    if (value.startsWith('guest=')) {
      found.push({ pid: Number(entry), name: value.slice('guest='.length).split(',')[0]!, startedBy: 'libvirt' });
    } else {
      found.push({ pid: Number(entry), name: value.split(',')[0]!, startedBy: 'qemu' });
    }
  }
  return found;
}

export function processAlive(pid: number): boolean {
  try {
    // A zombie still answers kill(0); its state letter in /proc/<pid>/stat says Z.
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
