import { describe, expect, it } from 'vitest';
import { QemuDriver } from '../../src/hypervisor/qemu.js';
import { MAX_SOCKET_PATH, qmpSocketPath, runtimeDirFor } from '../../src/hypervisor/runtime-dir.js';

const LONG_STORAGE = `/srv/${'images-of-a-long-configured-storage-path/'.repeat(5)}storage`.slice(0, 200);

describe('where QMP sockets live', () => {
  it('does not depend on the length of the configured storage path', () => {
    expect(LONG_STORAGE.length).toBe(200);
    const runDir = runtimeDirFor(LONG_STORAGE);
    const socket = qmpSocketPath(runDir, `imagefactory-${'f'.repeat(36)}-${'x'.repeat(30)}`);
    expect(Buffer.byteLength(socket)).toBeLessThanOrEqual(MAX_SOCKET_PATH);
    expect(socket.startsWith(process.getuid?.() === 0 ? '/run/imagefactory/' : '/')).toBe(true);
  });

  it('is the same directory for the same storage (a restarted daemon reaps its predecessor) and another for another', () => {
    expect(runtimeDirFor(LONG_STORAGE)).toBe(runtimeDirFor(LONG_STORAGE));
    expect(runtimeDirFor(LONG_STORAGE)).not.toBe(runtimeDirFor('/var/lib/imagefactory/storage'));
  });

  it('lets the qemu driver define a guest with the longest domain name on such a storage', async () => {
    const driver = new QemuDriver({ runDir: runtimeDirFor(LONG_STORAGE) });
    const name = `imagefactory-${'a'.repeat(80 - 'imagefactory-'.length)}`;
    const domain = await driver.define({ name, memoryMiB: 64, vcpus: 1, accel: 'tcg', disks: [], network: 'none', serialLog: `${LONG_STORAGE}/console.log` } as never);
    expect(domain.commandLine().join(' ')).toContain(`unix:${qmpSocketPath(runtimeDirFor(LONG_STORAGE), name)},server=on`);
  });
});
