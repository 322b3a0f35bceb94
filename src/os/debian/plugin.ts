import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_DISK_SIZE_BYTES } from '../answer/options.js';
import { exists } from '../exists.js';
import { removeTree } from '../../fs/remove-tree.js';
import { StepError, type OsPlugin, type RunningGuest, type StepContext } from '../plugin.js';
import type { Content } from '../../tdl/index.js';
import { icicleXml } from '../../tdl/icicle.js';
import { sha512Crypt } from '../answer/crypt.js';
import { DEFAULT_CONTENT_FETCH, fetchContentUrl, type ContentFetchOptions } from '../content-fetch.js';
import { TreeWriter } from '../tree-writer.js';
import { readTail } from '../../hypervisor/watchdog.js';
import { aptTlsOptions, basePackages, mmdebstrapArgs, sourceFiles, writeSourceFiles } from './bootstrap.js';
import { packagesInGuest, placeRepositories, unsignedRepositoryProblem, type PlacedRepository } from './repositories.js';
import { assembleDisk } from './disk.js';
import { pruneCache, type PackageCache } from './package-cache.js';
import { releaseFileDate, treeKey, type TreeCache } from './tree-cache.js';
import { createInstallerStrategy } from '../installer/strategy.js';
import { followChannel } from './follow.js';
import { AGENT_PATH, AGENT_SCRIPT, AGENT_UNIT, ChannelParser, emptyJobDisk, guestJob, HOSTKEYS_UNIT, JOB_DISK_BYTES, jobDiskImage, MARK, UNIT_NAME, writeJobDisk } from './guest-job.js';
import { BootCheckpoints, bootKey, CHECKPOINT_FILES, type CheckpointMeta } from './boot-checkpoint.js';
import { ARCHIVE_KEYRINGS, KERNEL_FLAVOURS, releaseOf, SUPPORTED_ARCHES, type KernelFlavour, type Release } from './releases.js';

/** mmdebstrap's own stage lines, as install progress (percent of the install step). */
const MMDEBSTRAP_STAGES: [string, number, string][] = [
  ['I: running apt-get update', 8, 'mmdebstrap: reading the package lists'],
  ['I: downloading packages', 15, 'mmdebstrap: downloading packages'],
  ['I: extracting archives', 30, 'mmdebstrap: extracting the essential packages'],
  ['I: installing essential packages', 40, 'mmdebstrap: installing the essential packages'],
  ['I: installing remaining packages', 55, 'mmdebstrap: installing the kernel and the template packages'],
  ['I: cleaning package lists', 78, 'mmdebstrap: cleaning up'],
];

const paths = (ctx: StepContext) => ({
  tree: join(ctx.workdir, 'tree'),
  /** The assembled disk before its first boot; never written once assembled (the guest writes into `work`). */
  raw: join(ctx.workdir, CHECKPOINT_FILES.disk),
  /** A boot checkpoint's overlay and state (boot-checkpoint.ts), linked in or taken here. */
  booted: join(ctx.workdir, CHECKPOINT_FILES.booted),
  state: join(ctx.workdir, CHECKPOINT_FILES.state),
  bootPlan: join(ctx.workdir, 'boot.json'),
  /** The customization guest's disk: an overlay of `raw` (or of `booted`, when resuming). */
  work: join(ctx.workdir, 'work.qcow2'),
  job: join(ctx.workdir, 'job.img'),
  sources: join(ctx.workdir, 'apt-sources'),
  /** mmdebstrap's TMPDIR: its temporary gpg home goes here, so a killed mmdebstrap leaves it where the undo looks. */
  tmp: join(ctx.workdir, 'tmp'),
  console: join(ctx.workdir, 'console.log'),
  channel: join(ctx.workdir, 'channel.log'),
});

function release(ctx: StepContext): Release {
  const { name, version, arch } = ctx.template.os;
  const r = releaseOf(name, version);
  if (!r) throw new StepError('unsupported_release', `${name} ${version} is not a release this plugin knows (Debian 10–13, Ubuntu 20.04, 22.04, 24.04)`);
  if (!SUPPORTED_ARCHES.includes(arch)) throw new StepError('unsupported_arch', `${name} images for ${arch} are not built yet (supported: ${SUPPORTED_ARCHES.join(', ')})`);
  return r;
}

/** `parameters.kernel`: `cloud` (default) or `generic`. */
function kernelFlavour(ctx: StepContext): KernelFlavour {
  const kernel = ctx.parameters.kernel ?? 'cloud';
  if (!KERNEL_FLAVOURS.includes(kernel as KernelFlavour)) throw new StepError('bad_parameter', `parameter kernel must be one of ${KERNEL_FLAVOURS.join(', ')}, not ${JSON.stringify(kernel)}`);
  return kernel as KernelFlavour;
}

function mirrorOf(ctx: StepContext): string {
  const install = ctx.template.os.install;
  if (install.type !== 'url') throw new StepError('unsupported_install', 'the bootstrap strategy needs a url install (a Debian/Ubuntu mirror)');
  return install.url;
}

/** Bytes of url-typed files and commands, fetched when the build runs (not when the template was parsed), within the configured limits. */
async function fetchContent(ctx: StepContext, limits: ContentFetchOptions): Promise<Map<string, Buffer>> {
  const urls = [...ctx.template.files.map((f) => f.content), ...ctx.template.commands.map((c) => c.content), ...ctx.template.precommands.map((c) => c.content)]
    .filter((c): c is Extract<Content, { type: 'url' }> => c.type === 'url')
    .map((c) => c.url);
  const fetched = new Map<string, Buffer>();
  for (const url of new Set(urls)) fetched.set(url, await fetchContentUrl(url, limits, ctx.signal));
  return fetched;
}

function bytesOf(content: Content, fetched: Map<string, Buffer>): Buffer {
  return content.type === 'url' ? fetched.get(content.url)! : content.data;
}

/** Sets root's password in the tree's /etc/shadow (SHA-512 crypt, computed here: nothing of the tree runs on the host). */
async function setRootPassword(tree: TreeWriter, password: string): Promise<void> {
  const shadow = (await tree.readFile('/etc/shadow')).toString('utf8');
  const days = Math.floor(Date.now() / 86_400_000);
  let found = false;
  const updated = shadow.replace(/^root:[^:\n]*:[^:\n]*:/m, () => {
    found = true;
    return `root:${sha512Crypt(password)}:${days}:`;
  });
  if (!found) throw new StepError('rootpw_failed', "setting the root password failed: the tree's /etc/shadow has no root entry");
  await tree.writeFile('/etc/shadow', updated);
}

const HOSTKEYS_UNIT_NAME = 'imagefactory-ssh-hostkeys.service';

/** What the host writes into a tree, besides the root password: the template's files, the network setup and the customization units. */
interface HostWrites {
  files: { path: string; data: Buffer | string; mode?: number }[];
  symlinks: { target: string; path: string }[];
}

function hostWrites(ctx: StepContext, fetched: Map<string, Buffer>, withFiles: boolean): HostWrites {
  return {
    files: [
      ...(withFiles ? ctx.template.files.map((f) => ({ path: f.name, data: bytesOf(f.content, fetched) })) : []),
      { path: '/etc/hostname', data: `${ctx.template.name.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 63) || 'localhost'}\n` },
      { path: '/etc/network/interfaces', data: 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n' },
      { path: AGENT_PATH, data: AGENT_SCRIPT, mode: 0o755 },
      { path: `/etc/systemd/system/${UNIT_NAME}`, data: AGENT_UNIT },
      { path: `/etc/systemd/system/${HOSTKEYS_UNIT_NAME}`, data: HOSTKEYS_UNIT },
    ],
    symlinks: [UNIT_NAME, HOSTKEYS_UNIT_NAME].map((unit) => ({ target: `/etc/systemd/system/${unit}`, path: `/etc/systemd/system/multi-user.target.wants/${unit}` })),
  };
}

/**
 * Puts the host writes into the tree, through the tree writer: every path
 * resolved inside the tree, never through a symlink out of it.
 */
async function writeIntoTree(ctx: StepContext, root: string, writes: HostWrites): Promise<void> {
  await TreeWriter.with(root, async (tree) => {
    // The password first, so that a template file may still replace /etc/shadow as a whole.
    if (ctx.template.os.rootpw !== null) await setRootPassword(tree, ctx.template.os.rootpw);
    for (const f of writes.files) await tree.writeFile(f.path, f.data, f.mode !== undefined ? { mode: f.mode } : {});
    for (const l of writes.symlinks) await tree.symlink(l.target, l.path);
  });
}

/** The customization guest's hardware: a boot checkpoint is only resumed by a guest with the same. */
const CUSTOMIZE_GUEST = { memoryMiB: 1024, vcpus: 2, network: 'user' as const };

/** The checkpoint key of the disk `writes` make from the tree `treeKey`: everything its first boot depends on. */
function bootKeyOf(ctx: StepContext, treeKey: string, writes: HostWrites): string {
  const digest = (d: Buffer | string) => createHash('sha256').update(d).digest('hex');
  return bootKey({
    treeKey,
    hostWrites: {
      rootpw: ctx.template.os.rootpw === null ? null : digest(ctx.template.os.rootpw),
      files: writes.files.map((f) => [f.path, digest(f.data), f.mode ?? null]),
      symlinks: writes.symlinks,
    },
    diskSizeBytes: ctx.template.diskSizeBytes ?? DEFAULT_DISK_SIZE_BYTES,
    guest: { ...CUSTOMIZE_GUEST, jobDiskBytes: JOB_DISK_BYTES },
  });
}

/** What the install step tells the customize step about boot checkpoints (boot.json in the work directory). */
interface BootPlan {
  treeKey: string;
  key: string;
  /** The checkpoint linked into the work directory, when there is one. */
  resume: CheckpointMeta | null;
}

/** What the install step does once the tree is there: the template's files, then the disk. */
async function finishInstall(ctx: StepContext, p: ReturnType<typeof paths>, writes: HostWrites, plan: Omit<BootPlan, 'resume'> | null): Promise<void> {
  ctx.progress(80, 'Writing files and assembling the disk');
  // Files come after packages (Oz's order): on the host now, or in the guest after its package install.
  await writeIntoTree(ctx, p.tree, writes);
  await assembleDisk(ctx.run, { tree: p.tree, disk: p.raw, sizeBytes: ctx.template.diskSizeBytes ?? DEFAULT_DISK_SIZE_BYTES, workdir: ctx.workdir });
  await removeTree(p.tree);
  if (plan) await writeFile(p.bootPlan, JSON.stringify({ ...plan, resume: null } satisfies BootPlan));
}

interface CustomizeRun {
  outcome: ReturnType<ChannelParser['outcome']>;
  /** From the guest's start to multi-user, as the host saw the channel; null when resumed. */
  bootSeconds: number | null;
  seconds: number;
  checkpoint: 'resumed' | 'saved' | null;
}

interface CustomizeOptions {
  /** The checkpoint linked into the work directory, to resume instead of booting. */
  resume: CheckpointMeta | null;
  job: () => string;
  /** Where to keep a checkpoint of this boot. */
  keep: { checkpoints: BootCheckpoints; treeKey: string; key: string } | null;
  /** How long a resumed guest may take to start its job before it is given up (checkpoint_unusable). */
  pickupSeconds: number;
}

/**
 * One customization guest: booted from the pre-boot disk (and saved as a
 * checkpoint once booted, when it may be kept) or resumed from a
 * checkpoint; its job handed over once it waits for it; watched until it
 * powers off. The guest writes only into a new overlay.
 */
async function customizeGuest(ctx: StepContext, p: ReturnType<typeof paths>, o: CustomizeOptions): Promise<CustomizeRun> {
  await rm(p.work, { force: true });
  // Backing files by relative name: a checkpoint's overlay finds its disk next to it in the cache and in the work directory alike.
  const backing = o.resume ? ['-F', 'qcow2', '-b', CHECKPOINT_FILES.booted] : ['-F', 'raw', '-b', CHECKPOINT_FILES.disk];
  const created = await ctx.run('qemu-img', ['create', '-q', '-f', 'qcow2', ...backing, p.work]);
  if (created.code !== 0) throw new StepError('overlay_failed', `qemu-img create exited with ${created.code}: ${created.stderr.trim()}`);
  await rm(p.channel, { force: true });
  await rm(p.job, { force: true });
  if (o.resume) await writeJobDisk(p.job, o.job());
  else await emptyJobDisk(p.job);

  const started = Date.now();
  let bootSeconds: number | null = null;
  let guest: RunningGuest | null = null;
  let pickup: NodeJS.Timeout | undefined;
  // Set from the channel's callback; never rejects.
  let handedOver = null as Promise<'saved' | null> | null;
  /** Once booted: the checkpoint (guest paused meanwhile), then the job. */
  const handOver = async (): Promise<'saved' | null> => {
    let identity: string | null = null;
    try {
      if (o.keep && guest?.checkpoint) {
        ctx.progress(22, 'Saving the booted guest as a checkpoint for later builds');
        await rm(p.state, { force: true });
        await rm(p.booted, { force: true });
        try {
          const pausedAt = Date.now();
          identity = await guest.checkpoint(p.state);
          // The boot's writes as they are now; the guest writes on into work.qcow2 once resumed.
          await copyFile(p.work, p.booted);
          ctx.log(`boot checkpoint: saved the booted guest in ${((Date.now() - pausedAt) / 1000).toFixed(1)} s`);
        } catch (e) {
          identity = null;
          ctx.log(`boot checkpoint: not taken: ${(e as Error).message}`);
        }
      }
      await writeJobDisk(p.job, o.job());
    } finally {
      if (guest?.checkpoint && o.keep) await guest.resume().catch((e: Error) => ctx.log(`boot checkpoint: resuming the guest failed: ${e.message}`));
    }
    if (!identity || !o.keep) return null;
    await o.keep.checkpoints.keep(o.keep.treeKey, o.keep.key, ctx.workdir, { identity, bootSeconds, created: new Date().toISOString() }, ctx.run, ctx.log);
    return 'saved';
  };

  ctx.progress(5, o.resume ? 'Resuming the booted guest from its checkpoint' : 'Booting the image to run the template commands');
  const channel = new ChannelParser();
  const follow = followChannel(p.channel, (line) => {
    channel.line(line);
    if (line.startsWith(`${MARK}-`)) return; // manifest lines: in the ICICLE, not the log
    ctx.log(`guest: ${line}`);
    const begin = /^IFMARK begin (.*)$/.exec(line);
    if (line === `${MARK} job-start`) clearTimeout(pickup);
    if (begin) ctx.progress(30, `In the guest: ${begin[1]}`);
    else if (line.startsWith(`${MARK} booted`) && !o.resume && !handedOver) {
      bootSeconds = Math.round((Date.now() - started) / 100) / 10;
      ctx.progress(20, `Booted to multi-user in ${bootSeconds} s; running the template in the guest`);
      handedOver = handOver().catch((e: Error) => {
        ctx.log(`handing the job to the guest failed: ${e.message}`);
        return null;
      });
    } else if (line === `${MARK} icicle-begin`) ctx.progress(70, 'In the guest: listing packages and cleaning up');
  });
  try {
    await ctx.runGuest({
      purpose: 'customize',
      ...CUSTOMIZE_GUEST,
      disks: [{ path: p.work, format: 'qcow2' }, { path: p.job, format: 'raw', readonly: true }],
      serialLog: p.console,
      channelLog: p.channel,
      ...(o.resume ? { restore: { state: p.state, identity: o.resume.identity } } : {}),
      onStarted: (g) => {
        guest = g;
        if (!o.resume) return;
        ctx.progress(20, `Resumed the booted guest in ${((Date.now() - started) / 1000).toFixed(1)} s; running the template in the guest`);
        // A state that loads but whose agent never reads its job would otherwise wait for the stall watchdog.
        pickup = setTimeout(() => g.abandon(new StepError('checkpoint_unusable', `the resumed guest did not start its job within ${o.pickupSeconds} s`)), o.pickupSeconds * 1000);
      },
    });
  } finally {
    clearTimeout(pickup);
    await follow.stop();
    // Also when the guest failed: nothing of the hand-over may run on after the step.
    await handedOver;
  }
  const saved = await handedOver;
  return { outcome: channel.outcome(), bootSeconds, seconds: (Date.now() - started) / 1000, checkpoint: o.resume ? 'resumed' : saved };
}

/**
 * The tree cache key of a bootstrap: its command, its source files and the
 * date of every repository's signed Release file as the mirror serves it
 * now. Null (no caching) when a date cannot be read.
 */
async function treeKeyOf(ctx: StepContext, limits: ContentFetchOptions, a: { args: string[]; sources: string[]; mirror: string; suite: string }): Promise<string | null> {
  const releases = [`${a.mirror.replace(/\/+$/, '')}/dists/${a.suite}/InRelease`];
  for (const text of a.sources) {
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/m.exec(text);
    if (m) releases.push(`${m[1]!.replace(/\/+$/, '')}/dists/${m[2]}/InRelease`);
  }
  const dates: string[] = [];
  for (const url of releases) {
    const date = await fetchContentUrl(url, limits, ctx.signal)
      .then((b) => releaseFileDate(b.toString('utf8')))
      .catch(() => null);
    if (!date) {
      ctx.log(`tree cache: not used for this build (no Release date at ${url})`);
      return null;
    }
    dates.push(date);
  }
  return treeKey({ args: a.args, sources: a.sources, releaseDates: dates });
}

/** `parameters.allow_unsigned_repositories` and the host's copy of the distribution's keyring, checked before any work. */
async function checkRepositories(ctx: StepContext, r: Release): Promise<void> {
  const refused = unsignedRepositoryProblem(ctx.template, r.suite, ctx.parameters);
  if (refused) throw refused;
  if (!(await exists(ARCHIVE_KEYRINGS[r.distro]))) {
    throw new StepError('keyring_missing', `${ARCHIVE_KEYRINGS[r.distro]} is missing on the build host: the ${r.distro} archive keyring (package ${r.distro === 'Debian' ? 'debian-archive-keyring' : 'ubuntu-keyring'}) is the only key the bootstrap trusts`);
  }
}

/** Where the template's repositories and packages go (see repositories.ts), logged once so a slow build says why. */
function placement(ctx: StepContext, r: Release): { placed: PlacedRepository[]; inGuest: boolean } {
  const placed = placeRepositories(ctx.template, r.suite);
  return { placed, inGuest: packagesInGuest(ctx.template, placed) };
}

/**
 * Debian and Ubuntu by bootstrap: the root tree is built on the host with
 * mmdebstrap (signed packages, as every bootstrap tool does), made into a
 * partitioned disk with its own bootloader, then booted once: the template's
 * commands run in that guest, which proves the image boots and then powers
 * itself off clean.
 */
export interface DebianPluginOptions {
  packageCache?: PackageCache | null;
  /** Bootstrapped trees kept between builds (tree_cache); none by default. */
  treeCache?: TreeCache | null;
  /** Limits of fetching url contents, and the configuration's file_url_dirs; DEFAULT_CONTENT_FETCH otherwise. */
  contentFetch?: ContentFetchOptions;
  /** How long a guest resumed from a boot checkpoint may take to start its job before the build boots afresh; 60 s by default. */
  jobPickupSeconds?: number;
}

export function createDebianPlugin(opts: DebianPluginOptions = {}): OsPlugin {
  const bootstrap = createBootstrapStrategy(opts);
  const installer = createInstallerStrategy();
  const pick = (ctx: StepContext): OsPlugin => (strategyOf(ctx) === 'installer' ? installer : bootstrap);
  const delegate = (step: keyof OsPlugin): OsPlugin[keyof OsPlugin] => ({
    run: async (ctx) => pick(ctx)[step].run(ctx),
    undo: async (ctx) => pick(ctx)[step].undo(ctx),
  });
  return { prepare: delegate('prepare'), install: delegate('install'), customize: delegate('customize') };
}

/** `parameters.install_strategy`: `bootstrap` (default) or `installer` (the distribution's installer with a preseed, see docs/installers.md). */
function strategyOf(ctx: StepContext): 'bootstrap' | 'installer' {
  const strategy = ctx.parameters.install_strategy ?? 'bootstrap';
  if (strategy !== 'bootstrap' && strategy !== 'installer') throw new StepError('bad_parameter', `parameter install_strategy must be "bootstrap" or "installer", not ${JSON.stringify(strategy)}`);
  return strategy;
}

function createBootstrapStrategy(opts: DebianPluginOptions): OsPlugin {
  const limits = opts.contentFetch ?? DEFAULT_CONTENT_FETCH;
  const pickupSeconds = opts.jobPickupSeconds ?? 60;
  const checkpoints = opts.treeCache ? new BootCheckpoints(opts.treeCache) : null;
  return {
    prepare: {
      async run(ctx) {
        const r = release(ctx);
        mirrorOf(ctx);
        kernelFlavour(ctx);
        await checkRepositories(ctx, r);
        await mkdir(ctx.workdir, { recursive: true, mode: 0o700 });
      },
      async undo() {},
    },
    install: {
      async run(ctx) {
        const p = paths(ctx);
        const r = release(ctx);
        await checkRepositories(ctx, r);
        await removeTree(p.tree);
        await mkdir(p.tree, { recursive: true });
        const fetched = await fetchContent(ctx, limits);
        const { placed, inGuest } = placement(ctx, r);
        for (const g of placed.filter((x) => x.where === 'guest')) ctx.log(`repository ${g.repo.name}: used in the guest only (${g.why})`);
        if (inGuest && ctx.template.packages.length) ctx.log(`packages: installed in the guest (${ctx.template.precommands.length ? 'precommands run before them' : 'a repository only the guest may use'})`);
        const hostPackages = inGuest ? [] : ctx.template.packages.map((x) => x.name);
        const hostRepositories = placed.filter((x) => x.where === 'host').map((x) => x.repo);
        await writeSourceFiles(p.sources, hostRepositories, r.suite);
        const bootstrapArgs = (tree: string, packageCache: string | null, sourcesDir: string) =>
          mmdebstrapArgs({
            template: ctx.template,
            release: r,
            mirror: mirrorOf(ctx),
            tree,
            packageCache,
            packages: [...basePackages(r, ctx.template.os.arch, kernelFlavour(ctx)), ...hostPackages],
            hostRepositories,
            keyring: ARCHIVE_KEYRINGS[r.distro],
            sourcesDir,
            // The guest's apt-get update then only revalidates the mirror's index (the guest job removes the lists at its end).
            keepPackageLists: inGuest && ctx.template.packages.length > 0,
          });
        // The tree depends only on the command that makes it (paths aside) and on what the mirror serves today.
        // A repository with credentials in its URL would leave them in the cache's copy: such trees are not kept.
        const cacheable = !hostRepositories.some((repo) => /:\/\/[^/\s]*@/.test(repo.url));
        const treeKey = opts.treeCache && cacheable
          ? await treeKeyOf(ctx, limits, { args: bootstrapArgs('TREE', null, 'SOURCES'), sources: sourceFiles(hostRepositories, r.suite).map((f) => f.text), mirror: mirrorOf(ctx), suite: r.suite })
          : null;
        const writes = hostWrites(ctx, fetched, !inGuest);
        const plan = opts.treeCache && treeKey ? { treeKey, key: bootKeyOf(ctx, treeKey, writes) } : null;
        if (plan && checkpoints) {
          const resume = await checkpoints.linkInto(plan.treeKey, plan.key, ctx.workdir, ctx.run);
          if (resume) {
            // The disk this build would assemble is the checkpoint's pre-boot disk: nothing to restore or assemble.
            ctx.log(`boot checkpoint: hit ${plan.key.slice(0, 12)}; the tree, the disk and the boot are reused`);
            ctx.report({ properties: { tree_cache: 'hit' } });
            await rm(p.sources, { recursive: true, force: true });
            await removeTree(p.tree);
            await writeFile(p.bootPlan, JSON.stringify({ ...plan, resume } satisfies BootPlan));
            return;
          }
        }
        if (opts.treeCache && treeKey) {
          ctx.progress(5, 'Restoring the bootstrapped tree from the tree cache');
          const restored = await opts.treeCache.restore(treeKey, p.tree, ctx.run).catch(async (e: Error) => {
            ctx.log(`tree cache: restoring ${treeKey.slice(0, 12)} failed (${e.message}); bootstrapping instead`);
            await removeTree(p.tree);
            await mkdir(p.tree, { recursive: true });
            return false;
          });
          if (restored) {
            ctx.log(`tree cache: hit ${treeKey.slice(0, 12)}; mmdebstrap skipped`);
            ctx.report({ properties: { tree_cache: 'hit' } });
            await rm(p.sources, { recursive: true, force: true });
            return finishInstall(ctx, p, writes, plan);
          }
        }
        ctx.progress(5, `Bootstrapping ${r.distro} ${r.suite} with mmdebstrap`);
        const args = bootstrapArgs(p.tree, opts.packageCache?.dir ?? null, p.sources);
        await mkdir(p.tmp, { recursive: true });
        const out = await ctx.run('mmdebstrap', args, {
          env: { TMPDIR: p.tmp },
          onLine: (line) => {
            const stage = MMDEBSTRAP_STAGES.find(([prefix]) => line.startsWith(prefix));
            if (stage) ctx.progress(stage[1], stage[2]);
          },
        });
        await rm(p.sources, { recursive: true, force: true });
        await rm(p.tmp, { recursive: true, force: true });
        if (out.code !== 0) {
          const tail = out.stderr.trim().split('\n').slice(-3).join(' / ');
          if (/NO_PUBKEY|is not signed|InRelease' is not signed|signatures couldn't be verified/i.test(out.stderr)) {
            throw new StepError('repository_unverified', `a repository marked signed is not signed by the ${r.distro} archive key, the only key the build host trusts (give the repository's key as a template file and it is used in the guest): ${tail}`, { outputTail: out.stderr.slice(-2000) });
          }
          throw new StepError('bootstrap_failed', `mmdebstrap exited with ${out.code}: ${tail}`, { outputTail: out.stderr.slice(-2000) });
        }
        if (opts.packageCache) await pruneCache(opts.packageCache);
        if (opts.treeCache && treeKey) {
          ctx.progress(78, 'Keeping the bootstrapped tree in the tree cache');
          await opts.treeCache.store(treeKey, p.tree, ctx.run, ctx.log);
          ctx.report({ properties: { tree_cache: 'miss' } });
        }
        await finishInstall(ctx, p, writes, plan);
      },
      async undo(ctx) {
        const p = paths(ctx);
        await removeTree(p.tree);
        await rm(p.sources, { recursive: true, force: true });
        await rm(p.tmp, { recursive: true, force: true });
        for (const f of [p.raw, p.booted, p.state, p.bootPlan]) await rm(f, { force: true });
      },
    },
    customize: {
      async run(ctx) {
        const p = paths(ctx);
        if (!(await exists(p.raw))) {
          if (await exists(ctx.diskPath)) return; // already customized and converted
          throw new StepError('disk_missing', 'the install step left no disk');
        }
        const fetched = await fetchContent(ctx, limits);
        const r = release(ctx);
        const { placed, inGuest } = placement(ctx, r);
        const guestRepositories = placed.filter((x) => x.where === 'guest').map((x) => x.repo);
        // Made when it is written: the clock and the entropy it hands the guest are those of that moment.
        const job = () =>
          guestJob(ctx.template, {
            runPrecommands: true,
            installInGuest: inGuest ? ctx.template.packages.map((x) => x.name) : [],
            filesInGuest: inGuest,
            fetched,
            guestSources: sourceFiles(guestRepositories, r.suite),
            guestAptOptions: aptTlsOptions(guestRepositories),
            hostClock: { now: new Date(), entropy: randomBytes(64) },
          });
        const plan = await readFile(p.bootPlan, 'utf8').then((t) => JSON.parse(t) as BootPlan, () => null);
        // A resumed guest sees the job disk of the size it booted with.
        const jobFits = jobDiskImage(job()).length <= JOB_DISK_BYTES;
        let resume = plan?.resume && jobFits && (await exists(p.state)) && (await exists(p.booted)) ? plan.resume : null;
        const keep = plan && checkpoints && jobFits ? { checkpoints, treeKey: plan.treeKey, key: plan.key } : null;
        let run: CustomizeRun;
        try {
          run = await customizeGuest(ctx, p, { resume, job, keep, pickupSeconds });
        } catch (e) {
          if (!resume || (e as { code?: string }).code !== 'checkpoint_unusable') throw e;
          ctx.log(`boot checkpoint: not resumed (${(e as Error).message}); booting instead`);
          resume = null;
          run = await customizeGuest(ctx, p, { resume, job, keep, pickupSeconds });
        }
        const { outcome, seconds, checkpoint } = run;
        const consoleTail = await readTail(p.console, 2000);
        if (!outcome.booted && !resume) throw new StepError('boot_failed', 'the image did not boot to multi-user by its own bootloader', { consoleTail });
        if (outcome.failed) {
          const { name, code, tail } = outcome.failed;
          const shortTail = tail.split('\n').slice(-10).join('\n').slice(-1000);
          throw new StepError('command_failed', `${name} exited with ${code}${shortTail ? `; output tail:\n${shortTail}` : ' (no output)'}`, {
            step: name,
            ...(/^(pre)?command /.test(name) ? { command: name.replace(/^(pre)?command /, '') } : {}),
            exitCode: code,
            outputTail: tail,
          });
        }
        if (!outcome.done) throw new StepError('customize_incomplete', 'the guest powered off before finishing its customization', { consoleTail });
        if (outcome.manifestTruncated) throw new StepError('icicle_too_large', 'the guest listed more packages than a manifest may hold');
        if (outcome.extrasMismatch) {
          const { packages, lines } = outcome.extrasMismatch;
          throw new StepError('icicle_extra_mismatch', `icicle/extra_command printed ${lines} lines for ${packages} packages; it must print one line per package name appended to it`);
        }
        ctx.report({
          icicle: icicleXml(ctx.template.description, outcome.packages.map((x) => ({ name: `${x.name}_${x.version}_${x.arch}`, extra: x.extra }))),
          // The boot time is as the host saw the channel (polled every 0.5 s): from guest start to multi-user; a resumed guest's is that of the boot it was saved from.
          properties: { boot_check: 'multi-user', boot_seconds: resume ? resume.bootSeconds : run.bootSeconds, boot_checkpoint: checkpoint ?? 'none', customize_boot_seconds: Math.round(seconds * 10) / 10 },
        });
        ctx.progress(90, 'Converting the disk to qcow2 (zero clusters dropped)');
        const conv = await ctx.run('qemu-img', ['convert', '-O', 'qcow2', p.work, ctx.diskPath]);
        if (conv.code !== 0) throw new StepError('convert_failed', `qemu-img convert exited with ${conv.code}: ${conv.stderr.trim()}`);
        for (const f of [p.work, p.raw, p.booted, p.state, p.bootPlan, p.job]) await rm(f, { force: true });
      },
      async undo(ctx) {
        const p = paths(ctx);
        for (const f of [p.job, p.work, ctx.diskPath]) await rm(f, { force: true });
      },
    },
  };
}
