import { mkdir, readFile, rm, writeFile, chmod, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DEFAULT_DISK_SIZE_BYTES } from '../answer/options.js';
import { exists } from '../exists.js';
import { StepError, type OsPlugin, type StepContext } from '../plugin.js';
import type { Content } from '../../tdl/index.js';
import { icicleXml } from '../../tdl/icicle.js';
import { basePackages, mmdebstrapArgs } from './bootstrap.js';
import { assembleDisk } from './disk.js';
import { pruneCache, type PackageCache } from './package-cache.js';
import { createInstallerStrategy } from '../installer/strategy.js';
import { followChannel } from './follow.js';
import { AGENT_PATH, AGENT_SCRIPT, AGENT_UNIT, guestJob, HOSTKEYS_UNIT, MARK, parseChannel, UNIT_NAME } from './guest-job.js';
import { KERNEL_FLAVOURS, releaseOf, SUPPORTED_ARCHES, type KernelFlavour, type Release } from './releases.js';

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
  raw: join(ctx.workdir, 'disk.raw'),
  job: join(ctx.workdir, 'job.img'),
  fetched: join(ctx.workdir, 'fetched'),
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

/** Bytes of url-typed files and commands, fetched when the build runs (not when the template was parsed). */
async function fetchContent(ctx: StepContext): Promise<Map<string, Buffer>> {
  const urls = [...ctx.template.files.map((f) => f.content), ...ctx.template.commands.map((c) => c.content), ...ctx.template.precommands.map((c) => c.content)]
    .filter((c): c is Extract<Content, { type: 'url' }> => c.type === 'url')
    .map((c) => c.url);
  const fetched = new Map<string, Buffer>();
  for (const url of new Set(urls)) {
    const u = new URL(url);
    if (u.protocol === 'file:') fetched.set(url, await readFile(u));
    else {
      const res = await fetch(url, { signal: ctx.signal });
      if (!res.ok) throw new StepError('content_unavailable', `fetching ${url} answered ${res.status}`);
      fetched.set(url, Buffer.from(await res.arrayBuffer()));
    }
  }
  return fetched;
}

function bytesOf(content: Content, fetched: Map<string, Buffer>): Buffer {
  return content.type === 'url' ? fetched.get(content.url)! : content.data;
}

/** Puts the template's files, the network setup and the customization unit into the tree. */
async function writeIntoTree(ctx: StepContext, tree: string, fetched: Map<string, Buffer>, withFiles: boolean): Promise<void> {
  for (const f of withFiles ? ctx.template.files : []) {
    const target = join(tree, f.name);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, bytesOf(f.content, fetched));
  }
  await writeFile(join(tree, 'etc/hostname'), `${ctx.template.name.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 63) || 'localhost'}\n`);
  await mkdir(join(tree, 'etc/network'), { recursive: true });
  await writeFile(join(tree, 'etc/network/interfaces'), 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n');
  if (ctx.template.os.rootpw !== null) {
    // chpasswd on the host writes only the tree's /etc/shadow; the password is never logged.
    const r = await ctx.run('chroot', [tree, 'chpasswd'], { input: `root:${ctx.template.os.rootpw}\n` });
    if (r.code !== 0) throw new StepError('rootpw_failed', 'setting the root password failed');
  }
  const units = join(tree, 'etc/systemd/system');
  await mkdir(join(units, 'multi-user.target.wants'), { recursive: true });
  await writeFile(join(tree, AGENT_PATH), AGENT_SCRIPT);
  await chmod(join(tree, AGENT_PATH), 0o755);
  await writeFile(join(units, UNIT_NAME), AGENT_UNIT);
  await writeFile(join(units, 'imagefactory-ssh-hostkeys.service'), HOSTKEYS_UNIT);
  for (const unit of [UNIT_NAME, 'imagefactory-ssh-hostkeys.service']) {
    await rm(join(units, 'multi-user.target.wants', unit), { force: true });
    await symlink(`/etc/systemd/system/${unit}`, join(units, 'multi-user.target.wants', unit));
  }
}

/**
 * Debian and Ubuntu by bootstrap: the root tree is built on the host with
 * mmdebstrap (signed packages, as every bootstrap tool does), made into a
 * partitioned disk with its own bootloader, then booted once: the template's
 * commands run in that guest, which proves the image boots and then powers
 * itself off clean.
 */
export function createDebianPlugin(opts: { packageCache?: PackageCache | null } = {}): OsPlugin {
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

function createBootstrapStrategy(opts: { packageCache?: PackageCache | null }): OsPlugin {
  return {
    prepare: {
      async run(ctx) {
        release(ctx);
        mirrorOf(ctx);
        kernelFlavour(ctx);
        await mkdir(ctx.workdir, { recursive: true });
      },
      async undo() {},
    },
    install: {
      async run(ctx) {
        const p = paths(ctx);
        const r = release(ctx);
        await rm(p.tree, { recursive: true, force: true });
        await mkdir(p.tree, { recursive: true });
        const fetched = await fetchContent(ctx);
        // Precommands must run before the template's packages: then packages are installed in the guest, after them.
        const hostPackages = ctx.template.precommands.length ? [] : ctx.template.packages.map((x) => x.name);
        ctx.progress(5, `Bootstrapping ${r.distro} ${r.suite} with mmdebstrap`);
        const args = mmdebstrapArgs({ template: ctx.template, release: r, mirror: mirrorOf(ctx), tree: p.tree, packageCache: opts.packageCache?.dir ?? null, packages: [...basePackages(r, ctx.template.os.arch, kernelFlavour(ctx)), ...hostPackages] });
        const out = await ctx.run('mmdebstrap', args, {
          onLine: (line) => {
            const stage = MMDEBSTRAP_STAGES.find(([prefix]) => line.startsWith(prefix));
            if (stage) ctx.progress(stage[1], stage[2]);
          },
        });
        if (out.code !== 0) throw new StepError('bootstrap_failed', `mmdebstrap exited with ${out.code}: ${out.stderr.trim().split('\n').slice(-3).join(' / ')}`, { outputTail: out.stderr.slice(-2000) });
        if (opts.packageCache) await pruneCache(opts.packageCache);
        ctx.progress(80, 'Writing files and assembling the disk');
        // Files come after packages (Oz's order): on the host now, or in the guest after its package install.
        await writeIntoTree(ctx, p.tree, fetched, ctx.template.precommands.length === 0);
        await assembleDisk(ctx.run, { tree: p.tree, disk: p.raw, sizeBytes: ctx.template.diskSizeBytes ?? DEFAULT_DISK_SIZE_BYTES, workdir: ctx.workdir });
        await rm(p.tree, { recursive: true, force: true });
      },
      async undo(ctx) {
        const p = paths(ctx);
        await rm(p.tree, { recursive: true, force: true });
        await rm(p.raw, { force: true });
      },
    },
    customize: {
      async run(ctx) {
        const p = paths(ctx);
        if (!(await exists(p.raw))) {
          if (await exists(ctx.diskPath)) return; // already customized and converted
          throw new StepError('disk_missing', 'the install step left no disk');
        }
        const fetched = await fetchContent(ctx);
        const job = guestJob(ctx.template, {
          runPrecommands: true,
          installInGuest: ctx.template.precommands.length ? ctx.template.packages.map((x) => x.name) : [],
          filesInGuest: ctx.template.precommands.length > 0,
          fetched,
        });
        const jobBytes = Buffer.from(job);
        const padded = Buffer.alloc(Math.ceil((jobBytes.length + 1) / 1048576) * 1048576);
        jobBytes.copy(padded);
        await writeFile(p.job, padded);
        await rm(p.channel, { force: true });
        ctx.progress(5, 'Booting the image to run the template commands');
        const started = Date.now();
        let bootSeconds: number | null = null;
        const follow = followChannel(p.channel, (line) => {
          if (line.startsWith(`${MARK}-`)) return; // manifest lines: in the ICICLE, not the log
          ctx.log(`guest: ${line}`);
          const begin = /^IFMARK begin (.*)$/.exec(line);
          if (begin) ctx.progress(30, `In the guest: ${begin[1]}`);
          else if (line.startsWith(`${MARK} booted`)) {
            bootSeconds = Math.round((Date.now() - started) / 100) / 10;
            ctx.progress(20, `Booted to multi-user in ${bootSeconds} s; running the template in the guest`);
          }
          else if (line === `${MARK} icicle-begin`) ctx.progress(70, 'In the guest: listing packages and cleaning up');
        });
        try {
          await ctx.runGuest({ purpose: 'customize', memoryMiB: 1024, vcpus: 2, disks: [{ path: p.raw, format: 'raw' }, { path: p.job, format: 'raw', readonly: true }], network: 'user', serialLog: p.console, channelLog: p.channel });
        } finally {
          await follow.stop();
        }
        const seconds = (Date.now() - started) / 1000;
        const outcome = parseChannel(await readFile(p.channel, 'utf8').catch(() => ''));
        const consoleTail = (await readFile(p.console, 'utf8').catch(() => '')).slice(-2000);
        if (!outcome.booted) throw new StepError('boot_failed', 'the image did not boot to multi-user by its own bootloader', { consoleTail });
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
        if (outcome.extrasMismatch) {
          const { packages, lines } = outcome.extrasMismatch;
          throw new StepError('icicle_extra_mismatch', `icicle/extra_command printed ${lines} lines for ${packages} packages; it must print one line per package name appended to it`);
        }
        ctx.report({
          icicle: icicleXml(ctx.template.description, outcome.packages.map((x) => ({ name: `${x.name}_${x.version}_${x.arch}`, extra: x.extra }))),
          // The boot time is as the host saw the channel (polled every 0.5 s): from guest start to multi-user.
          properties: { boot_check: 'multi-user', boot_seconds: bootSeconds, customize_boot_seconds: Math.round(seconds * 10) / 10 },
        });
        ctx.progress(90, 'Converting the disk to qcow2 (zero clusters dropped)');
        const conv = await ctx.run('qemu-img', ['convert', '-O', 'qcow2', p.raw, ctx.diskPath]);
        if (conv.code !== 0) throw new StepError('convert_failed', `qemu-img convert exited with ${conv.code}: ${conv.stderr.trim()}`);
        await rm(p.raw, { force: true });
        await rm(p.job, { force: true });
      },
      async undo(ctx) {
        const p = paths(ctx);
        await rm(p.job, { force: true });
        await rm(ctx.diskPath, { force: true });
      },
    },
  };
}
