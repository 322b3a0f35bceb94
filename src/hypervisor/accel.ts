import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import type { Accel } from './types.js';

export type AccelSetting = 'auto' | Accel;

export interface AccelProbe {
  /** The KVM device node; `/dev/kvm` on Linux. */
  kvmDevice?: string;
  /** Where the CPU flags are read; `/proc/cpuinfo` on Linux. */
  cpuinfo?: string;
}

export interface AccelChoice {
  accel: Accel;
  /** Why, in words, for the daemon's start-up log. */
  reason: string;
}

/**
 * Chooses the accelerator. `auto` takes KVM only when the device node opens
 * read-write AND the CPU advertises hardware virtualization (`vmx` or `svm`):
 * on nested or emulated hosts `/dev/kvm` can exist while a guest under KVM
 * hangs (no vmx/svm in the flags), so the node alone is not proof.
 * An explicit `kvm` or `tcg` is taken as given.
 */
export function chooseAccel(setting: AccelSetting, probe: AccelProbe = {}): AccelChoice {
  if (setting === 'kvm') return { accel: 'kvm', reason: 'accel = "kvm" in the configuration' };
  if (setting === 'tcg') return { accel: 'tcg', reason: 'accel = "tcg" in the configuration' };
  const device = probe.kvmDevice ?? '/dev/kvm';
  const cpuinfo = probe.cpuinfo ?? '/proc/cpuinfo';
  if (!kvmDeviceOpens(device)) return { accel: 'tcg', reason: `${device} cannot be opened read-write` };
  if (!cpuHasVirtualization(cpuinfo)) return { accel: 'tcg', reason: `${device} exists but ${cpuinfo} shows no vmx or svm flag` };
  return { accel: 'kvm', reason: `${device} opens and the CPU has hardware virtualization` };
}

/** `chooseAccel` without the reason. */
export function detectAccel(setting: AccelSetting, probe: AccelProbe = {}): Accel {
  return chooseAccel(setting, probe).accel;
}

function kvmDeviceOpens(path: string): boolean {
  try {
    closeSync(openSync(path, constants.O_RDWR));
    return true;
  } catch {
    return false;
  }
}

function cpuHasVirtualization(path: string): boolean {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return false;
  }
  for (const line of text.split('\n')) {
    // x86: `flags : fpu vme … vmx …`; every processor repeats it, the first is enough.
    const m = /^flags\s*:(.*)$/.exec(line);
    if (m) return m[1]!.split(/\s+/).some((flag) => flag === 'vmx' || flag === 'svm');
  }
  return false;
}
