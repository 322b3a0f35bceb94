import { link, mkdir, readFile, rm, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Template } from '../../tdl/index.js';
import { answerFileFor } from '../answer/select.js';
import type { AnswerFile } from '../answer/options.js';
import { DEFAULT_DISK_SIZE_BYTES } from '../answer/options.js';
import { appendToInitrd } from '../media/initrd.js';
import { identifyDistro } from '../answer/distro.js';
import { verifyChecksum } from '../media/checksum.js';
import type { GetOptions } from '../media/download-cache.js';
import { extractFromIso, installerKernelArgs, locateInstallerOnIso } from '../media/iso.js';
import { locateInstaller, type InstallerLocation } from '../media/tree.js';
import { exists } from '../exists.js';
import { StepError, type OsPlugin, type StepContext } from '../plugin.js';

export interface InstallerStrategyOptions {
  /** The answer file for a build; the generated preseed/kickstart (or `parameters.install_script`) by default. */
  answerFile?: (template: Template, parameters: Record<string, unknown>) => AnswerFile;
  /** Where the installer kernel and initrd are in the template's url tree; `locateInstaller` by default. */
  locate?: (treeUrl: string, template: Template, signal: AbortSignal) => Promise<InstallerLocation>;
  /** Where the installer kernel and initrd are on the template's ISO; `locateInstallerOnIso` for the OS's family by default. */
  locateOnIso?: (iso: string, template: Template, run: StepContext['run']) => Promise<{ kernel: string; initrd: string }>;
  /** The installer's kernel command line; `installerKernelArgs` for an answer file in the initrd by default. */
  kernelArgs?: (answer: AnswerFile, template: Template) => string;
  memoryMiB?: number;
  vcpus?: number;
}

const paths = (ctx: StepContext) => ({
  kernel: join(ctx.workdir, 'installer-kernel'),
  initrd: join(ctx.workdir, 'installer-initrd'),
  disk: join(ctx.workdir, 'install.qcow2'),
  iso: join(ctx.workdir, 'install.iso'),
  console: join(ctx.workdir, 'install-console.log'),
});

/** Keeps a build's own copy of a cached medium: a hard link when the cache is on the same filesystem. */
async function keep(from: string, to: string): Promise<void> {
  await rm(to, { force: true });
  await link(from, to).catch(() => copyFile(from, to));
}

/**
 * The installer strategy, as Oz builds images: the distribution's installer
 * boots in a guest (kernel and initrd from the template's tree, or out of
 * its ISO once verified against the template's checksum, attached as the
 * CD-ROM; the answer file appended to the initrd as a cpio archive), installs onto an empty
 * disk of the template's size and powers off. The install watchdog decides
 * between done, `install_stalled`, `timeout` and `cancelled`; the guest is
 * destroyed on every path. Template commands are not run by this strategy:
 * it refuses templates that have them rather than skip them.
 */
export function createInstallerStrategy(opts: InstallerStrategyOptions = {}): OsPlugin {
  const answerOf = opts.answerFile ?? ((template, parameters) => answerFileFor(template, parameters));
  const locate = opts.locate ?? ((url, template, signal) => locateInstaller(url, template.os, { signal }));
  const locateOnIso = opts.locateOnIso ?? ((iso, template, run) => locateInstallerOnIso(iso, identifyDistro(template.os).family, template.os.arch, { run }));
  // An ISO install reads its packages from the CD-ROM; a tree install from the tree.
  const kernelArgs =
    opts.kernelArgs ??
    ((answer, template) => installerKernelArgs(answer, 'initrd', { installUrl: template.os.install.type === 'url' ? template.os.install.url : 'cdrom', kernelparam: template.os.kernelparam ?? null }));

  /** Kernel and initrd from the url tree, or out of the (verified) ISO, into the workdir; says where they came from. */
  async function fetchInstaller(ctx: StepContext): Promise<string> {
    const p = paths(ctx);
    const install = ctx.template.os.install;
    if (install.type === 'url') {
      const where = await locate(install.url, ctx.template, ctx.signal);
      await fetchTo(ctx, where.kernelUrl, p.kernel);
      await fetchTo(ctx, where.initrdUrl, `${p.initrd}.orig`);
      return `${where.kernelUrl} (found by ${where.foundBy})`;
    }
    const checksum = install.checksum;
    // A corrupt ISO fails here and never enters the cache.
    await fetchTo(ctx, install.iso, p.iso, checksum ? { checksum: checksum.url, verify: async (path, signal) => void (await verifyChecksum(path, install.iso, checksum, { signal })) } : {});
    const where = await locateOnIso(p.iso, ctx.template, ctx.run);
    await extractFromIso(p.iso, [
      { isoPath: where.kernel, dest: p.kernel },
      { isoPath: where.initrd, dest: `${p.initrd}.orig` },
    ], { run: ctx.run });
    return `${where.kernel} on ${install.iso}${checksum ? ` (${checksum.kind} verified)` : ' (no checksum given)'}`;
  }

  return {
    prepare: {
      async run(ctx) {
        const t = ctx.template;
        if (t.commands.length || t.precommands.length || t.files.length) {
          throw new StepError('customization_unavailable', 'the installer strategy does not run template commands or write files yet; use install_strategy "bootstrap" for such templates');
        }
        const p = paths(ctx);
        const answer = answerOf(t, ctx.parameters);
        ctx.progress(10, 'Fetching the installer kernel and initrd');
        const source = await fetchInstaller(ctx);
        // The answer file holds the root password: it goes into the initrd only, never the log.
        await appendToInitrd(`${p.initrd}.orig`, p.initrd, [answer, ...answer.companions].map((f) => ({ name: `/${'fileName' in f ? f.fileName : f.name}`, data: f.content })));
        await rm(`${p.initrd}.orig`, { force: true });
        ctx.log(`installer: ${source}; answer file /${answer.fileName} (${answer.source})`);
        const size = t.diskSizeBytes ?? DEFAULT_DISK_SIZE_BYTES;
        const created = await ctx.run('qemu-img', ['create', '-q', '-f', 'qcow2', p.disk, String(size)]);
        if (created.code !== 0) throw new StepError('disk_create_failed', `qemu-img create exited with ${created.code}: ${created.stderr.trim()}`);
      },
      async undo(ctx) {
        const p = paths(ctx);
        for (const f of [p.kernel, p.initrd, `${p.initrd}.orig`, p.disk, p.iso]) await rm(f, { force: true });
      },
    },
    install: {
      async run(ctx) {
        const p = paths(ctx);
        if (!(await exists(p.disk))) {
          if (await exists(ctx.diskPath)) return; // installed already (a resumed build)
          throw new StepError('disk_missing', 'the prepare step left no install disk');
        }
        const answer = answerOf(ctx.template, ctx.parameters);
        ctx.progress(5, 'Installing: the installer is running in the guest');
        await ctx.runGuest({
          purpose: 'install',
          memoryMiB: opts.memoryMiB ?? 1024,
          vcpus: opts.vcpus ?? 1,
          disks: [{ path: p.disk, format: 'qcow2' }],
          kernel: { path: p.kernel, initrd: p.initrd, cmdline: kernelArgs(answer, ctx.template) },
          ...((await exists(p.iso)) ? { cdrom: p.iso } : {}),
          network: 'user',
          serialLog: p.console,
        });
        const tail = (await readFile(p.console, 'utf8').catch(() => '')).slice(-4096);
        ctx.log(`installer console tail:\n${tail}`);
        ctx.progress(90, 'Compacting the installed disk');
        const conv = await ctx.run('qemu-img', ['convert', '-O', 'qcow2', p.disk, ctx.diskPath]);
        if (conv.code !== 0) throw new StepError('convert_failed', `qemu-img convert exited with ${conv.code}: ${conv.stderr.trim()}`);
        for (const f of [p.disk, p.kernel, p.initrd, p.iso]) await rm(f, { force: true });
      },
      async undo(ctx) {
        await rm(ctx.diskPath, { force: true });
      },
    },
    customize: {
      async run() {},
      async undo() {},
    },
  };
}

/** Copies a medium through the shared download cache into the build's workdir. */
async function fetchTo(ctx: StepContext, url: string, to: string, options: Omit<GetOptions, 'signal'> = {}): Promise<void> {
  const file = await ctx.media.get(url, { ...options, signal: ctx.signal });
  try {
    await keep(file.path, to);
  } finally {
    file.release();
  }
}
