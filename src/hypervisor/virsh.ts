import { spawn } from 'node:child_process';

export interface VirshResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `virsh -c URI …` for what @unraid/libvirt does not bind (block and
 * interface statistics, screenshots). A short-lived process, killed after
 * `timeoutMs`; it never throws, the caller looks at `code`.
 */
export function virsh(uri: string, args: string[], opts: { binary?: string; timeoutMs?: number } = {}): Promise<VirshResult> {
  return new Promise((resolve) => {
    const child = spawn(opts.binary ?? 'virsh', ['-q', '-c', uri, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (t: string) => (stdout += t));
    child.stderr.on('data', (t: string) => (stderr += t));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 10_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: stderr + err.message });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/** `virsh domstats` output (`  block.0.rd.reqs=4` lines) as a map. */
export function parseDomstats(text: string): Map<string, string> {
  const stats = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([\w.]+)=(.*)$/.exec(line);
    if (m) stats.set(m[1]!, m[2]!.trim());
  }
  return stats;
}

/** Disk requests (reads + writes over all disks) and network bytes (rx + tx over all interfaces) from domstats. */
export function activityFromDomstats(stats: Map<string, string>): { diskRequests: number; netBytes: number } {
  let diskRequests = 0;
  let netBytes = 0;
  for (const [key, value] of stats) {
    const n = Number(value);
    if (!Number.isFinite(n)) continue;
    if (/^block\.\d+\.(rd|wr)\.reqs$/.test(key)) diskRequests += n;
    else if (/^net\.\d+\.(rx|tx)\.bytes$/.test(key)) netBytes += n;
  }
  return { diskRequests, netBytes };
}
