import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLocally } from '../src/cli/local-build.js';
import { defaultConfig } from '../src/config/schema.js';
import { basePackages, mmdebstrapArgs, writeSourceFiles } from '../src/os/debian/bootstrap.js';
import { placeRepositories } from '../src/os/debian/repositories.js';
import { chooseAccel } from '../src/hypervisor/accel.js';
import { DEFAULT_DISK_SIZE_BYTES } from '../src/os/answer/options.js';
import { assembleDisk } from '../src/os/debian/disk.js';
import { ARCHIVE_KEYRINGS, releaseOf } from '../src/os/debian/releases.js';
import { localRunner, runChecked } from '../src/os/media/tools.js';
import { parseTdlOrThrow } from '../src/tdl/index.js';
import { PROJECT_ROOT } from '../src/version.js';
import { startDaemon } from './daemon-process.js';
import { consoleOf } from './serial-console.js';

/**
 * End-to-end time of a Debian 12 build with packages, files and commands
 * (examples/debian-12.tdl), next to the same work run by hand in the same
 * run; then what the caches save: a rebuild that changes only the
 * template's commands (the booted guest of the first build is resumed from
 * its boot checkpoint, with its tree and disk), and the identical
 * template posted again to a daemon on the same data (the base is reused).
 *
 * Like with like: both sides use the same mmdebstrap package set (the same
 * kernel package), the same repositories, the same package cache — warmed
 * by an unmeasured build first, so that neither side pays the downloads —
 * the same disk assembly, and the same accelerator for the boot. The one
 * difference is the point: the baseline runs mmdebstrap as a person would,
 * and so builds the initramfs twice (the kernel's postinst, then the
 * initramfs-tools trigger), where the product builds it once.
 */

export interface Figure {
  seconds: number;
  phases: [string, number][];
}

export interface DebianBuildFigures {
  rows: { name: string; figure: Figure; note: string }[];
  runs: number;
  accel: string;
  ratio: number;
  /** The commands-only rebuild ÷ the hand-run baseline. */
  commandsOnlyRatio: number;
}

const run = localRunner();
const since = (t: number) => (Date.now() - t) / 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

async function handRun(templateText: string, dir: string, accel: string): Promise<Figure> {
  const template = parseTdlOrThrow(templateText);
  const release = releaseOf(template.os.name, template.os.version)!;
  const config = defaultConfig();
  const tree = join(dir, 'tree');
  const raw = join(dir, 'disk.raw');
  const qcow2 = join(dir, 'disk.qcow2');
  const mirror = template.os.install.type === 'url' ? template.os.install.url : '';
  const started = Date.now();
  const hostRepositories = placeRepositories(template, release.suite).filter((p) => p.where === 'host').map((p) => p.repo);
  const sourcesDir = join(dir, 'apt-sources');
  await writeSourceFiles(sourcesDir, hostRepositories, release.suite);
  // The product's own mmdebstrap line less its initramfs deferral: what a person types.
  const args = mmdebstrapArgs({
    template,
    release,
    mirror,
    tree,
    hostRepositories,
    keyring: ARCHIVE_KEYRINGS[release.distro],
    sourcesDir,
    packageCache: config.package_cache,
    packages: [...basePackages(release, template.os.arch), ...template.packages.map((p) => p.name)],
  }).filter((a) => !a.includes('update-initramfs'));
  await runChecked(run, 'mmdebstrap', args);
  const bootstrap = since(started);
  let t = Date.now();
  await assembleDisk(run, { tree, disk: raw, sizeBytes: template.diskSizeBytes ?? DEFAULT_DISK_SIZE_BYTES, workdir: dir });
  await rm(tree, { recursive: true, force: true });
  await runChecked(run, 'qemu-img', ['convert', '-O', 'qcow2', raw, qcow2]);
  await rm(raw, { force: true });
  const disk = since(t);
  t = Date.now();
  const console = consoleOf('qemu-system-x86_64', ['-accel', accel, '-m', '1024', '-smp', '2', '-nographic', '-snapshot', '-no-reboot', '-drive', `file=${qcow2},format=qcow2,if=virtio`, '-nic', 'user,model=virtio-net-pci'], 'bench-baseline');
  try {
    await console.waitFor(/login: *$/m, 600_000, 0);
  } finally {
    await console.close();
  }
  await rm(qcow2, { force: true });
  return { seconds: since(started), phases: [['mmdebstrap', bootstrap], ['disk + qcow2', disk], ['boot to login', since(t)]] };
}

/** `imagefactory build` in this process, with a tree cache of the bench's own (never the machine's, which may be warm). */
async function productBuild(templateText: string, dataDir: string, treeCacheDir: string): Promise<Figure> {
  const started = Date.now();
  const lines: string[] = [];
  const out = { write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WritableStream;
  const { image, exitCode, phases } = await buildLocally(templateText, { dataDir, out, treeCache: { dir: treeCacheDir, maxBytes: 8 * 2 ** 30 } });
  if (exitCode !== 0) throw new Error(`the build failed: ${image.error?.code}: ${image.error?.message}\n${lines.join('')}`);
  const p = (s: string) => phases[s] ?? 0;
  return {
    seconds: since(started),
    phases: [
      ['validate + prepare', p('validating') + p('preparing') + p('queued')],
      ['install (mmdebstrap + disk)', p('installing')],
      ['customize (boot, commands, qcow2)', p('customizing')],
      ['snapshot (sha256)', p('snapshotting')],
    ],
  };
}

/** The identical template posted to a daemon on the local build's data: POST to COMPLETE, through REST. */
async function restRebuild(templateText: string, dataDir: string, treeCacheDir: string): Promise<Figure> {
  const config = join(dataDir, 'imagefactory.conf');
  await writeFile(config, JSON.stringify({ image_manager_args: { storage_path: join(dataDir, 'storage') }, imgdir: join(dataDir, 'work'), tmpdir: join(dataDir, 'work'), tree_cache: treeCacheDir }));
  const daemon = await startDaemon(config);
  try {
    const started = Date.now();
    const posted = await fetch(`${daemon.url}/imagefactory/base_images`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ base_image: { template: templateText } }) });
    const id = ((await posted.json()) as { base_image: { id: string } }).base_image.id;
    for (;;) {
      const image = ((await (await fetch(`${daemon.url}/imagefactory/base_images/${id}`)).json()) as { base_image: { status: string; status_detail: { error?: string } } }).base_image;
      if (image.status === 'COMPLETE') break;
      if (image.status === 'FAILED' || image.status === 'CANCELLED') throw new Error(`the REST rebuild ended ${image.status}: ${image.status_detail.error}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const seconds = since(started);
    return { seconds, phases: [['POST to COMPLETE', seconds]] };
  } finally {
    await daemon.stop();
  }
}

/** The median of each figure over `runs` runs; phases by the median of each. */
function medianFigure(figures: Figure[]): Figure {
  return {
    seconds: median(figures.map((f) => f.seconds)),
    phases: figures[0]!.phases.map(([name], i) => [name, median(figures.map((f) => f.phases[i]![1]))]),
  };
}

export async function debianBuild(opts: { runs?: number } = {}): Promise<DebianBuildFigures> {
  const runs = Math.max(1, opts.runs ?? 1);
  const { accel } = chooseAccel(defaultConfig().accel);
  const templateText = await readFile(join(PROJECT_ROOT, 'examples', 'debian-12.tdl'), 'utf8');
  const changed = templateText.replace('</commands>', '  <command name="z-bench-change">echo changed &gt; /etc/bench-change</command>\n  </commands>');
  if (changed === templateText) throw new Error('examples/debian-12.tdl has no <commands> to change');
  const dir = await mkdtemp(join(tmpdir(), 'if-bench-debian-'));
  try {
    // Unmeasured: fills the package cache, so both sides read the same warm cache.
    await productBuild(templateText, join(dir, 'warm-up'), join(dir, 'warm-up-trees'));
    const ours: Figure[] = [];
    const baseline: Figure[] = [];
    const rebuilt: Figure[] = [];
    const identical: Figure[] = [];
    for (let i = 0; i < runs; i++) {
      const data = join(dir, `data-${i}`);
      // An empty tree cache for each measured build: it bootstraps, as the baseline does.
      const trees = join(dir, `trees-${i}`);
      // Alternating the order keeps the page cache and the machine's other load from favouring one side.
      if (i % 2 === 0) {
        ours.push(await productBuild(templateText, data, trees));
        baseline.push(await handRun(templateText, join(dir), accel));
      } else {
        baseline.push(await handRun(templateText, join(dir), accel));
        ours.push(await productBuild(templateText, data, trees));
      }
      rebuilt.push(await productBuild(changed, data, trees));
      identical.push(await restRebuild(templateText, data, trees));
    }
    const b = medianFigure(baseline);
    const o = medianFigure(ours);
    return {
      runs,
      accel,
      rows: [
        { name: 'hand-run baseline', figure: b, note: 'mmdebstrap as a person runs it: the initramfs is built twice' },
        { name: 'imagefactory build', figure: o, note: 'the initramfs built once; the commands run in one boot of the image, saved as a boot checkpoint' },
        { name: 'rebuild, only commands changed', figure: medianFigure(rebuilt), note: 'the booted guest resumed from its boot checkpoint: the commands, the manifest and qcow2 only' },
        { name: 'identical rebuild through REST', figure: medianFigure(identical), note: 'a daemon on the same data: the finished base reused (cache hit)' },
      ],
      ratio: o.seconds / b.seconds,
      commandsOnlyRatio: medianFigure(rebuilt).seconds / b.seconds,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
