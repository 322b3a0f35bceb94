// What the libvirt provider does through `virsh`. @unraid/libvirt binds no storage pool or volume
// call (and is not thread-safe), so pools, volumes (create, upload, delete) and the persistent
// domain all go through virsh, spawned from the main thread with the push's AbortSignal: a cancel
// kills a running `vol-upload`, which aborts libvirt's stream.
import { ProviderError } from '../errors.js';
import { runTool, runToolChecked, type ToolResult } from '../tool.js';

export interface Virsh {
  (args: string[], options?: { signal?: AbortSignal; input?: string }): Promise<ToolResult>;
  checked(args: string[], options?: { signal?: AbortSignal; input?: string }): Promise<ToolResult>;
}

export function virshFor(uri: string, binary = 'virsh'): Virsh {
  const call = ((args, options = {}) => runTool(binary, ['-q', '-c', uri, ...args], options)) as Virsh;
  call.checked = (args, options = {}) => runToolChecked(binary, ['-q', '-c', uri, ...args], options);
  return call;
}

/** The pool, started; created (as a directory pool, autostarted) if it does not exist. */
export async function ensurePool(virsh: Virsh, pool: string, path: string, signal?: AbortSignal): Promise<'existed' | 'created'> {
  let info = await virsh(['pool-info', pool], { signal });
  let created = false;
  if (info.code !== 0) {
    const defined = await virsh(['pool-define-as', pool, 'dir', '--target', path], { signal });
    // Another push may have defined it meanwhile; then it exists now.
    if (defined.code !== 0 && (await virsh(['pool-info', pool], { signal })).code !== 0) {
      throw new ProviderError('provider_error', `libvirt refused to create the storage pool ${pool}: ${lastLine(defined.stderr)}`);
    }
    if (defined.code === 0) {
      created = true;
      await virsh.checked(['pool-build', pool], { signal });
      await virsh(['pool-autostart', pool], { signal });
    }
    info = await virsh.checked(['pool-info', pool], { signal });
  }
  if (!/^State:\s+running/m.test(info.stdout)) {
    const started = await virsh(['pool-start', pool], { signal });
    if (started.code !== 0 && !/already active/i.test(started.stderr)) throw new ProviderError('provider_error', `libvirt could not start the storage pool ${pool}: ${lastLine(started.stderr)}`);
  }
  return created ? 'created' : 'existed';
}

export async function volumeExists(virsh: Virsh, pool: string, volume: string, signal?: AbortSignal): Promise<boolean> {
  return (await virsh(['vol-info', '--pool', pool, volume], { signal })).code === 0;
}

/** Deletes a volume; one already gone is fine. */
export async function deleteVolume(virsh: Virsh, pool: string, volume: string, signal?: AbortSignal): Promise<void> {
  const result = await virsh(['vol-delete', '--pool', pool, volume], { signal });
  if (result.code !== 0 && (await volumeExists(virsh, pool, volume, signal))) {
    throw new ProviderError('provider_error', `libvirt could not delete volume ${volume} of pool ${pool}: ${lastLine(result.stderr)}`);
  }
}

export async function domainExists(virsh: Virsh, name: string, signal?: AbortSignal): Promise<boolean> {
  return (await virsh(['domstate', name], { signal })).code === 0;
}

/** Undefines a (stopped) domain, its NVRAM too; one already gone is fine. A running one is refused. */
export async function undefineDomain(virsh: Virsh, name: string, signal?: AbortSignal): Promise<void> {
  const state = await virsh(['domstate', name], { signal });
  if (state.code !== 0) return;
  if (!/shut off/.test(state.stdout)) throw new ProviderError('provider_error', `domain ${name} is ${state.stdout.trim()}: stop it before deleting its image`);
  const result = await virsh(['undefine', name, '--nvram'], { signal });
  if (result.code !== 0 && (await domainExists(virsh, name, signal))) {
    throw new ProviderError('provider_error', `libvirt could not undefine domain ${name}: ${lastLine(result.stderr)}`);
  }
}

export function lastLine(text: string): string {
  return text.trim().split('\n').at(-1)?.replace(/^error:\s*/, '') ?? '';
}
