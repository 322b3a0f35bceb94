import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLocally } from '../src/cli/local-build.js';
import { PROJECT_ROOT } from '../src/version.js';
import { buildDebRepo, hostAddress, serveDebRepo } from './deb-repo.js';

/**
 * What installing a template's packages in the guest costs: the packages of
 * examples/debian-12.tdl installed by the bootstrap on the host (the
 * baseline), then the same template with an unsigned repository of one tiny
 * package added, which sends every template package to the guest (TCG).
 */

export interface GuestPackagesFigures {
  rows: { name: string; seconds: number; detail: string }[];
  ratio: number;
}

async function timedBuild(template: string, dataDir: string, parameters: Record<string, unknown> = {}): Promise<{ seconds: number; detail: string }> {
  const started = Date.now();
  const lines: string[] = [];
  const out = { write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WritableStream;
  const { image, exitCode } = await buildLocally(template, { dataDir, out, parameters });
  if (exitCode !== 0) throw new Error(`the build failed: ${image.error?.code}: ${image.error?.message}\n${lines.join('')}`);
  const phases = lines.filter((l) => /^\s*\d+ s\s+(installing|customizing|snapshotting)\s+\d+%/.test(l));
  const at = (phase: string) => Number(/^\s*(\d+) s/.exec(phases.find((l) => l.includes(` ${phase} `)) ?? '')?.[1] ?? NaN);
  return {
    seconds: (Date.now() - started) / 1000,
    detail: `install ${at('customizing') - at('installing')} s, customization boot ${String(image.properties.customize_boot_seconds)} s`,
  };
}

export async function guestPackages(): Promise<GuestPackagesFigures> {
  const host = await readFile(join(PROJECT_ROOT, 'examples', 'debian-12.tdl'), 'utf8');
  // A short directory: the qemu driver's QMP socket lives under it, and a unix socket path holds 107 bytes.
  const dir = await mkdtemp(join(tmpdir(), 'ifgp-'));
  buildDebRepo(join(dir, 'repo'), [{ name: 'if-bench-tool', files: { '/usr/share/doc/if-bench-tool/README': 'bench\n' } }]);
  const repo = await serveDebRepo(join(dir, 'repo'), hostAddress());
  const guest = host
    .replace('</repositories>', `  <repository name="bench-tools"><url>${repo.sourceLine}</url><signed>no</signed></repository>\n  </repositories>`)
    .replace('</packages>', '  <package name="if-bench-tool"/>\n  </packages>');
  try {
    // The host build first: it warms the package cache for both.
    const onHost = await timedBuild(host, join(dir, 'd'));
    const inGuest = await timedBuild(guest, join(dir, 'd'), { allow_unsigned_repositories: true });
    return {
      rows: [
        { name: 'packages on the host', ...onHost },
        { name: 'same + unsigned repo (guest)', ...inGuest },
      ],
      ratio: inGuest.seconds / onHost.seconds,
    };
  } finally {
    await repo.close();
    await rm(dir, { recursive: true, force: true });
  }
}
