import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLocally } from '../src/cli/local-build.js';
import { defaultConfig } from '../src/config/schema.js';
import { basePackages, mmdebstrapArgs } from '../src/os/debian/bootstrap.js';
import { DEFAULT_DISK_SIZE_BYTES } from '../src/os/answer/options.js';
import { assembleDisk } from '../src/os/debian/disk.js';
import { releaseOf } from '../src/os/debian/releases.js';
import { localRunner, runChecked } from '../src/os/media/tools.js';
import { parseTdlOrThrow } from '../src/tdl/index.js';
import { PROJECT_ROOT } from '../src/version.js';
import { bootConsole } from './serial-console.js';

/**
 * End-to-end time of a Debian 12 build with packages, files and commands
 * (examples/debian-12.tdl), next to the same work run by hand in the same
 * run: mmdebstrap with the same package set and package cache (as a person
 * would type it, without the product's initramfs deferral), the same
 * disk assembly, qemu-img convert to qcow2, one boot to a login prompt.
 * Then a second build that changes only the template's commands: what a
 * build cache would have to win back.
 */

export interface DebianBuildFigures {
  rows: { name: string; seconds: number; detail: string }[];
  ratio: number;
}

const run = localRunner();

const seconds = (since: number) => (Date.now() - since) / 1000;

async function handRun(templateText: string, dir: string): Promise<{ seconds: number; detail: string }> {
  const template = parseTdlOrThrow(templateText);
  const release = releaseOf(template.os.name, template.os.version)!;
  const config = defaultConfig();
  const tree = join(dir, 'tree');
  const raw = join(dir, 'disk.raw');
  const qcow2 = join(dir, 'disk.qcow2');
  const mirror = template.os.install.type === 'url' ? template.os.install.url : '';
  const started = Date.now();
  // mmdebstrap as a person would run it: the same packages, repositories and package cache, without
  // the product's own tricks (the initramfs built once instead of twice).
  const args = mmdebstrapArgs({
    template,
    release,
    mirror,
    tree,
    packageCache: config.package_cache,
    packages: [...basePackages(release, template.os.arch), ...template.packages.map((p) => p.name)],
  }).filter((a) => !a.includes('update-initramfs'));
  await runChecked(run, 'mmdebstrap', args);
  const bootstrap = seconds(started);
  let t = Date.now();
  await assembleDisk(run, { tree, disk: raw, sizeBytes: template.diskSizeBytes ?? DEFAULT_DISK_SIZE_BYTES, workdir: dir });
  await rm(tree, { recursive: true, force: true });
  await runChecked(run, 'qemu-img', ['convert', '-O', 'qcow2', raw, qcow2]);
  await rm(raw, { force: true });
  const disk = seconds(t);
  t = Date.now();
  const console = bootConsole(qcow2, { tag: 'bench-baseline' });
  try {
    await console.waitFor(/login: *$/m, 600_000, 0);
  } finally {
    await console.close();
  }
  const boot = seconds(t);
  return { seconds: seconds(started), detail: `mmdebstrap ${bootstrap.toFixed(0)} s, disk + qcow2 ${disk.toFixed(0)} s, boot to login ${boot.toFixed(0)} s` };
}

async function ourBuild(templateText: string, dataDir: string): Promise<{ seconds: number; detail: string }> {
  const started = Date.now();
  const lines: string[] = [];
  const out = { write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WritableStream;
  const { image, exitCode } = await buildLocally(templateText, { dataDir, out });
  if (exitCode !== 0) throw new Error(`the build failed: ${image.error?.code}: ${image.error?.message}\n${lines.join('')}`);
  const boot = image.properties.customize_boot_seconds;
  return { seconds: seconds(started), detail: `COMPLETE; customization boot (commands, manifest, power-off) ${String(boot)} s` };
}

export async function debianBuild(): Promise<DebianBuildFigures> {
  const templateText = await readFile(join(PROJECT_ROOT, 'examples', 'debian-12.tdl'), 'utf8');
  const changed = templateText.replace('</commands>', '  <command name="z-bench-change">echo changed &gt; /etc/bench-change</command>\n  </commands>');
  if (changed === templateText) throw new Error('examples/debian-12.tdl has no <commands> to change');
  const dir = await mkdtemp(join(tmpdir(), 'if-bench-debian-'));
  try {
    // Ours first: if the package cache is cold, the build pays the downloads, not the baseline.
    const ours = await ourBuild(templateText, join(dir, 'data'));
    const baseline = await handRun(templateText, dir);
    const again = await ourBuild(changed, join(dir, 'data'));
    return {
      rows: [
        { name: 'hand-run baseline', ...baseline },
        { name: 'imagefactory build', ...ours },
        { name: 'rebuild, only commands changed', ...again },
      ],
      ratio: ours.seconds / baseline.seconds,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
