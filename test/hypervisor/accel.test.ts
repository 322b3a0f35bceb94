import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chooseAccel, detectAccel } from '../../src/hypervisor/accel.js';

const dir = mkdtempSync(join(tmpdir(), 'imagefactory-accel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cpuinfo(flags: string): string {
  const path = join(dir, `cpuinfo-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, `processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: ${flags}\n\nprocessor\t: 1\nflags\t\t: ${flags}\n`);
  return path;
}

// /dev/null opens read-write like a usable /dev/kvm; a missing path does not.
const OPENS = '/dev/null';
const MISSING = join(dir, 'no-kvm');

describe('choosing the accelerator', () => {
  it('auto takes KVM when the device opens read-write and the CPU has vmx', () => {
    expect(detectAccel('auto', { kvmDevice: OPENS, cpuinfo: cpuinfo('fpu vme vmx sse2') })).toBe('kvm');
  });

  it('auto takes KVM with svm (AMD) too', () => {
    expect(detectAccel('auto', { kvmDevice: OPENS, cpuinfo: cpuinfo('fpu svm lm') })).toBe('kvm');
  });

  it('auto takes TCG when /dev/kvm exists but the CPU flags have neither vmx nor svm (a nested host where KVM guests hang)', () => {
    const choice = chooseAccel('auto', { kvmDevice: OPENS, cpuinfo: cpuinfo('fpu vme hypervisor lm vmxnot') });
    expect(choice.accel).toBe('tcg');
    expect(choice.reason).toMatch(/no vmx or svm/);
  });

  it('auto takes TCG when the device cannot be opened', () => {
    const choice = chooseAccel('auto', { kvmDevice: MISSING, cpuinfo: cpuinfo('vmx') });
    expect(choice).toEqual({ accel: 'tcg', reason: `${MISSING} cannot be opened read-write` });
  });

  it('takes an explicit kvm or tcg as given', () => {
    expect(detectAccel('kvm', { kvmDevice: MISSING })).toBe('kvm');
    expect(detectAccel('tcg', { kvmDevice: OPENS, cpuinfo: cpuinfo('vmx') })).toBe('tcg');
  });

  it('on this machine auto agrees with /dev/kvm and /proc/cpuinfo (tcg on the CI machines: no vmx/svm)', () => {
    const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? [];
    let opens = false;
    try {
      closeSync(openSync('/dev/kvm', constants.O_RDWR));
      opens = true;
    } catch {
      opens = false;
    }
    const expected = opens && (flags.includes('vmx') || flags.includes('svm')) ? 'kvm' : 'tcg';
    expect(detectAccel('auto')).toBe(expected);
  });
});
