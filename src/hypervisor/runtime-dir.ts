import { createHash } from 'node:crypto';
import { join } from 'node:path';

/** A unix socket path holds at most 107 bytes (sun_path is 108 with its NUL). */
export const MAX_SOCKET_PATH = 107;

const shortHash = (s: string, chars: number): string => createHash('sha256').update(s).digest('hex').slice(0, chars);

/**
 * Where a process keeps its unix sockets: a short directory that does not
 * depend on how long the configured storage or work paths are. Root uses
 * /run/imagefactory, others $XDG_RUNTIME_DIR or /tmp/imagefactory-UID. The
 * subdirectory is named after `owner` (the storage path), so that a daemon
 * restarted on the same storage finds the sockets of its predecessor, and two
 * daemons on different storages never share one.
 */
export function runtimeDirFor(owner: string): string {
  const uid = process.getuid?.() ?? 0;
  const base = uid === 0 ? '/run/imagefactory' : process.env.XDG_RUNTIME_DIR ? join(process.env.XDG_RUNTIME_DIR, 'imagefactory') : `/tmp/imagefactory-${uid}`;
  return join(base, shortHash(owner, 8));
}

/** A guest's QMP socket: named by a hash of the domain name, so that an 80-character name still fits. */
export function qmpSocketPath(runDir: string, domainName: string): string {
  return join(runDir, `${shortHash(domainName, 16)}.qmp`);
}
