import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StepError } from '../os/plugin.js';
import type { Command, Template } from '../tdl/index.js';
import { icicleXml } from '../tdl/icicle.js';
import { repositoryFile, sourceLine } from '../os/debian/bootstrap.js';
import { shellQuote } from '../shell-quote.js';
import { followChannel } from '../os/debian/follow.js';
import { AGENT_PATH, AGENT_SCRIPT, AGENT_UNIT, guestJob, MARK, parseChannel, UNIT_NAME, writeJobDisk } from '../os/debian/guest-job.js';
import { releaseOf } from '../os/debian/releases.js';
import type { AdaptationPlan, GuestFile } from './adaptation.js';
import { quote, type GuestFs } from './guest-fs.js';
import type { CloudStepContext } from './types.js';

/**
 * The one adaptation boot, with the Debian plugin's customization channel
 * (src/os/debian/guest-job.ts): its one-shot agent unit is written into the
 * overlay with debugfs, a job disk carries the work (repositories, the
 * distribution's own packages with apt, the initramfs, the serial console),
 * the guest reports on its second serial port, cleans itself for reuse,
 * removes the agent and powers off. Nothing of the image runs on the host.
 */

const raw = (name: string, script: string): Command => ({ name, position: null, content: { type: 'raw', data: Buffer.from(script) } });

/** The job's steps for what the plan found missing. */
export function adaptationCommands(template: Template, plan: AdaptationPlan): { precommands: Command[]; commands: Command[] } {
  // A bare repository URL gets the release's suite (as at bootstrap); source lines are kept as written.
  const suite = releaseOf(template.os.name, template.os.version)?.suite ?? 'stable';
  const precommands = plan.repositories.length
    ? [raw('target-repositories', ['mkdir -p /etc/apt/sources.list.d', ...plan.repositories.map((r) => `printf '%s\\n' ${shellQuote(sourceLine(r, suite))} > ${repositoryFile(r)}`)].join('\n'))]
    : [];
  const commands: Command[] = [];
  if (plan.missingModules.length) {
    commands.push(
      raw(
        'target-initramfs-modules',
        [
          'set -e',
          `for m in ${plan.missingModules.join(' ')}; do grep -qxF "$m" /etc/initramfs-tools/modules 2>/dev/null || echo "$m" >> /etc/initramfs-tools/modules; done`,
          'update-initramfs -u -k all',
        ].join('\n'),
      ),
    );
  }
  if (plan.addSerialConsole) {
    commands.push(
      raw(
        'target-serial-console',
        [
          'set -e',
          // The image's own GRUB configuration, and Debian's generator settings when grub is installed.
          "sed -i -E '/^[[:space:]]*linux[[:space:]]/ { / console=ttyS0/! s/$/ console=tty0 console=ttyS0,115200n8/ }' /boot/grub/grub.cfg",
          'if [ -f /etc/default/grub ] && ! grep -q "console=ttyS0" /etc/default/grub; then',
          '  sed -i -E \'s/^GRUB_CMDLINE_LINUX="(.*)"/GRUB_CMDLINE_LINUX="\\1 console=tty0 console=ttyS0,115200n8"/\' /etc/default/grub',
          '  if command -v update-grub >/dev/null; then update-grub; fi',
          'fi',
        ].join('\n'),
      ),
    );
  }
  // A cloud-init that ran (or was configured) here must run again, from scratch, at the instance's first boot.
  commands.push(raw('target-cloud-init-clean', 'if command -v cloud-init >/dev/null; then cloud-init clean --logs; fi'));
  return { precommands, commands };
}

const paths = (ctx: Pick<CloudStepContext, 'workdir'>) => ({
  job: join(ctx.workdir, 'adapt-job.img'),
  console: join(ctx.workdir, 'adapt-console.log'),
  channel: join(ctx.workdir, 'adapt-channel.log'),
  agent: join(ctx.workdir, 'adapt-agent'),
  unit: join(ctx.workdir, 'adapt-agent.service'),
});

/** Writes the customization agent and its enabled unit into the overlay's root filesystem. */
export async function injectAgent(ctx: Pick<CloudStepContext, 'workdir'>, fs: GuestFs): Promise<void> {
  const p = paths(ctx);
  await writeFile(p.agent, AGENT_SCRIPT, { mode: 0o755 });
  await writeFile(p.unit, AGENT_UNIT, { mode: 0o644 });
  const agentDir = AGENT_PATH.slice(0, AGENT_PATH.lastIndexOf('/'));
  const agentName = AGENT_PATH.slice(agentDir.length + 1);
  const wants = '/etc/systemd/system/multi-user.target.wants';
  const commands: string[] = [];
  if ((await fs.list(agentDir)) === null) commands.push(`mkdir ${agentDir}`);
  if ((await fs.list(wants)) === null) commands.push(`mkdir ${wants}`);
  // debugfs `write` names the new file inside the current directory, hence the cd.
  commands.push(
    `cd ${agentDir}`,
    `write ${p.agent} ${agentName}`,
    `sif ${agentName} mode 0100755`,
    `sif ${agentName} uid 0`,
    `sif ${agentName} gid 0`,
    'cd /etc/systemd/system',
    `write ${p.unit} ${UNIT_NAME}`,
    `sif ${UNIT_NAME} mode 0100644`,
    `sif ${UNIT_NAME} uid 0`,
    `sif ${UNIT_NAME} gid 0`,
    `symlink ${wants}/${UNIT_NAME} /etc/systemd/system/${UNIT_NAME}`,
  );
  await fs.write(commands);
  await rm(p.agent, { force: true });
  await rm(p.unit, { force: true });
}

/** Writes files into the overlay's root filesystem (owner root, mode 0644), creating their directories. */
export async function writeGuestFiles(ctx: Pick<CloudStepContext, 'workdir'>, fs: GuestFs, files: GuestFile[]): Promise<void> {
  const commands: string[] = [];
  const made = new Set<string>();
  const hostFiles: string[] = [];
  for (const [i, f] of files.entries()) {
    const dir = f.path.slice(0, f.path.lastIndexOf('/')) || '/';
    const name = f.path.slice(dir.length + (dir === '/' ? 0 : 1));
    let walked = '';
    for (const part of dir.split('/').filter(Boolean)) {
      walked += `/${part}`;
      if (!made.has(walked) && (await fs.list(walked)) === null) {
        commands.push(`mkdir ${quote(walked)}`);
        made.add(walked);
      }
    }
    const host = join(ctx.workdir, `adapt-file-${i}`);
    await writeFile(host, f.content);
    hostFiles.push(host);
    commands.push(`cd ${quote(dir)}`);
    if ((await fs.read(f.path)) !== null) commands.push(`rm ${quote(name)}`);
    commands.push(`write ${host} ${quote(name)}`, `sif ${quote(name)} mode 0100644`, `sif ${quote(name)} uid 0`, `sif ${quote(name)} gid 0`);
  }
  try {
    if (commands.length) await fs.write(commands);
  } finally {
    for (const h of hostFiles) await rm(h, { force: true });
  }
}

export interface AdaptBootResult {
  bootSeconds: number | null;
  seconds: number;
  icicle: string;
}

/** Boots the overlay once with the job for `plan`; the agent must have been injected. */
export async function runAdaptationBoot(ctx: CloudStepContext, overlay: string, plan: AdaptationPlan, progress: (percent: number, activity: string) => void): Promise<AdaptBootResult> {
  const p = paths(ctx);
  const { precommands, commands } = adaptationCommands(ctx.template, plan);
  // Files are written after the packages (whose directories they may need), before the commands.
  const files = plan.writeFiles.map((f) => ({ name: f.path, content: { type: 'raw' as const, data: Buffer.from(f.content) } }));
  const template: Template = { ...ctx.template, precommands, commands, files, packages: [], repositories: plan.repositories };
  await writeJobDisk(p.job, guestJob(template, { runPrecommands: true, installInGuest: plan.missingPackages, filesInGuest: files.length > 0, fetched: new Map() }));
  await rm(p.channel, { force: true });
  await rm(p.console, { force: true });
  const started = Date.now();
  let bootSeconds: number | null = null;
  const follow = followChannel(p.channel, (line) => {
    if (line.startsWith(`${MARK}-`)) return;
    ctx.log(`guest: ${line}`);
    const begin = /^IFMARK begin (.*)$/.exec(line);
    if (begin) progress(40, `In the guest: ${begin[1]}`);
    else if (line.startsWith(`${MARK} booted`)) {
      bootSeconds = Math.round((Date.now() - started) / 100) / 10;
      progress(30, `Booted to multi-user in ${bootSeconds} s; adapting in the guest`);
    } else if (line === `${MARK} icicle-begin`) progress(85, 'In the guest: listing packages and cleaning up');
  });
  try {
    progress(20, `Booting the image once to install ${plan.missingPackages.length ? plan.missingPackages.join(', ') : 'the target configuration'}`);
    await ctx.runGuest({ purpose: 'adapt', memoryMiB: 1024, vcpus: 2, disks: [{ path: overlay, format: 'qcow2' }, { path: p.job, format: 'raw', readonly: true }], network: 'user', serialLog: p.console, channelLog: p.channel });
  } finally {
    await follow.stop();
    await rm(p.job, { force: true });
  }
  const outcome = parseChannel(await readFile(p.channel, 'utf8').catch(() => ''));
  const consoleTail = (await readFile(p.console, 'utf8').catch(() => '')).slice(-2000);
  await rm(p.channel, { force: true });
  await rm(p.console, { force: true });
  if (!outcome.booted) throw new StepError('boot_failed', 'the image did not boot to multi-user for its adaptation', { consoleTail });
  if (outcome.failed) {
    const { name, code, tail } = outcome.failed;
    throw new StepError('adaptation_failed', `${name} exited with ${code} in the guest${tail ? `; output tail:\n${tail.split('\n').slice(-10).join('\n')}` : ''}`, { step: name, exitCode: code, outputTail: tail });
  }
  if (!outcome.done) throw new StepError('adaptation_incomplete', 'the guest powered off before finishing its adaptation', { consoleTail });
  return {
    bootSeconds,
    seconds: Math.round((Date.now() - started) / 100) / 10,
    icicle: icicleXml(ctx.template.description, outcome.packages.map((x) => ({ name: `${x.name}_${x.version}_${x.arch}`, extra: x.extra }))),
  };
}

/** Files of a boot that a failed or cancelled adapt may leave in the workdir. */
export async function removeBootFiles(ctx: Pick<CloudStepContext, 'workdir'>): Promise<void> {
  for (const f of Object.values(paths(ctx))) await rm(f, { force: true });
}
