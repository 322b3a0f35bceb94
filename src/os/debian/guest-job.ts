import type { Command, Content, Template } from '../../tdl/index.js';
import { repositoryFile, shellQuote } from './bootstrap.js';

/**
 * The customization channel. The image carries a one-shot systemd unit
 * that, once the system is up, reads a job script from a second virtio disk
 * and runs it with its output on the second serial port. The host reads
 * that port's log: nothing needs a network, a key or an agent in the guest,
 * and the unit removes itself before the guest powers off.
 */

export const MARK = 'IFMARK';
/**
 * Power-off once the job is done: units are not stopped one by one (nothing
 * in a build guest needs it, and it costs seconds under TCG), but systemd
 * still kills every process and unmounts or remounts read-only every
 * filesystem, so the image is left clean.
 */
const POWEROFF = 'systemctl poweroff --force';
export const AGENT_PATH = '/usr/local/sbin/imagefactory-customize';
export const UNIT_NAME = 'imagefactory-customize.service';

export const AGENT_SCRIPT = `#!/bin/sh
# imagefactory build-time customization; removed before the image is finished.
exec >/dev/ttyS1 2>&1
systemctl is-system-running --wait >/dev/null 2>&1
echo "${MARK} booted $(systemctl is-system-running 2>/dev/null)"
tr -d '\\000' < /dev/vdb > /run/imagefactory-job.sh
exec sh /run/imagefactory-job.sh
`;

export const AGENT_UNIT = `[Unit]
Description=imagefactory build-time customization (removed before the image is finished)
After=basic.target
ConditionPathExists=/dev/vdb

[Service]
# simple, not oneshot: the script waits for the boot to finish, which must not wait for it.
Type=simple
ExecStart=${AGENT_PATH}
StandardOutput=journal
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
`;

/** Regenerates ssh host keys at first boot, since the finished image carries none. */
export const HOSTKEYS_UNIT = `[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
`;

function contentBytes(what: string, content: Content, fetched: Map<string, Buffer>): Buffer {
  const data = content.type === 'url' ? fetched.get(content.url) : content.data;
  if (!data) throw new Error(`${what}: its url content was not fetched`);
  return data;
}

/** Stops the job: the failure is on the channel, the disk is synced, the guest powers off. */
function failWith(label: string): string {
  return `{ echo "${MARK} failed "${label}" rc=$rc"; sync; ${POWEROFF}; exit $rc; }`;
}

/** Runs one template command from a file, with its name and exit code framed by markers. */
function commandBlock(kind: 'precommand' | 'command', c: Command, index: number, fetched: Map<string, Buffer>): string {
  const data = contentBytes(`command "${c.name}"`, c.content, fetched);
  const file = `/run/imagefactory-${kind}-${index}`;
  const label = shellQuote(`${kind} ${c.name}`);
  return [
    `printf '%s' ${shellQuote(data.toString('base64'))} | base64 -d > ${file}`,
    `chmod 700 ${file}`,
    `echo "${MARK} begin "${label}`,
    `if head -c 2 ${file} | grep -q '^#!'; then ${file}; else sh ${file}; fi`,
    `rc=$?`,
    `echo "${MARK} end "${label}" rc=$rc"`,
    `rm -f ${file}`,
    `[ $rc -eq 0 ] || ${failWith(label)}`,
  ].join('\n');
}

/** The job the guest runs: precommands, commands, the package manifest, clean-up, power-off. */
export function guestJob(template: Template, opts: { runPrecommands: boolean; installInGuest: string[]; filesInGuest: boolean; fetched: Map<string, Buffer> }): string {
  const lines = ['set -u', `echo "${MARK} job-start"`, 'export DEBIAN_FRONTEND=noninteractive'];
  if (opts.runPrecommands) template.precommands.forEach((c, i) => lines.push(commandBlock('precommand', c, i, opts.fetched)));
  if (opts.installInGuest.length) {
    const label = shellQuote('packages');
    lines.push(
      `echo "${MARK} begin "${label}`,
      `apt-get update -q && apt-get install -y -q --no-install-recommends ${opts.installInGuest.map(shellQuote).join(' ')}`,
      'rc=$?',
      `echo "${MARK} end "${label}" rc=$rc"`,
      `[ $rc -eq 0 ] || ${failWith(label)}`,
    );
  }
  if (opts.filesInGuest) {
    for (const f of template.files) {
      const data = contentBytes(`file "${f.name}"`, f.content, opts.fetched);
      const label = shellQuote(`file ${f.name}`);
      lines.push(
        `echo "${MARK} begin "${label}`,
        `mkdir -p "$(dirname ${shellQuote(f.name)})" && printf '%s' ${shellQuote(data.toString('base64'))} | base64 -d > ${shellQuote(f.name)}`,
        'rc=$?',
        `echo "${MARK} end "${label}" rc=$rc"`,
        `[ $rc -eq 0 ] || ${failWith(label)}`,
      );
    }
  }
  template.commands.forEach((c, i) => lines.push(commandBlock('command', c, i, opts.fetched)));

  // The manifest: one line per installed package, then the template's extra_command over all of them.
  lines.push(`echo "${MARK} icicle-begin"`);
  lines.push(`dpkg-query -W -f='\${db:Status-Abbrev}\\t\${Package}\\t\${Version}\\t\${Architecture}\\n' | awk -F'\\t' '$1 ~ /^ii/ {print "${MARK}-PKG\\t" $2 "\\t" $3 "\\t" $4}'`);
  if (template.os.icicleExtraCommand) {
    // As Oz does: the package names are appended to the command, which prints one line per package.
    lines.push(
      `dpkg-query -W -f='\${db:Status-Abbrev} \${Package}\\n' | awk '$1 ~ /^ii/ {print $2}' > /run/imagefactory-pkgs`,
      `sh -c ${shellQuote(template.os.icicleExtraCommand)}" $(tr '\\n' ' ' < /run/imagefactory-pkgs)" 2>/dev/null | sed 's/^/${MARK}-EXTRA\\t/'`,
    );
  }
  lines.push(`echo "${MARK} icicle-end"`);

  // Clean for reuse: no identity, keys, caches, logs or traces of this channel.
  for (const repo of template.repositories.filter((r) => !r.persisted)) lines.push(`rm -f ${repositoryFile(repo)}`);
  lines.push(
    'apt-get clean; rm -rf /var/lib/apt/lists/*',
    ': > /etc/machine-id; rm -f /var/lib/dbus/machine-id',
    'rm -f /etc/ssh/ssh_host_*',
    'find /var/log -type f -exec truncate -s 0 {} +',
    `rm -f /etc/systemd/system/multi-user.target.wants/${UNIT_NAME} /etc/systemd/system/${UNIT_NAME} ${AGENT_PATH} /run/imagefactory-*`,
    'rm -rf /tmp/* /var/tmp/*',
    `echo "${MARK} done"`,
    'sync',
    POWEROFF,
  );
  return lines.join('\n') + '\n';
}

export interface JobOutcome {
  booted: boolean;
  done: boolean;
  failed: { name: string; code: number; tail: string } | null;
  packages: { name: string; version: string; arch: string; extra: string | null }[];
  /** The extra command printed a line count other than one per package (Oz refuses that too). */
  extrasMismatch?: { packages: number; lines: number };
}

/** Reads the channel log the guest wrote. */
export function parseChannel(log: string): JobOutcome {
  // A command whose output lacks a final newline has the end marker glued to its last line.
  const lines = log.replace(new RegExp(`(?<=[^\\n])(${MARK} (?:end|failed) [^\\n]* rc=\\d+)\r?$`, 'gm'), '\n$1').split(/\r?\n/);
  const outcome: JobOutcome = { booted: false, done: false, failed: null, packages: [] };
  const extras: string[] = [];
  let current: { name: string; out: string[] } | null = null;
  for (const line of lines) {
    if (line.startsWith(`${MARK} booted`)) outcome.booted = true;
    else if (line === `${MARK} done`) outcome.done = true;
    else if (line.startsWith(`${MARK}-PKG\t`)) {
      const [, name, version, arch] = line.split('\t');
      outcome.packages.push({ name: name!, version: version!, arch: arch!, extra: null });
    } else if (line.startsWith(`${MARK}-EXTRA\t`)) extras.push(line.slice(MARK.length + 7));
    else if (line.startsWith(`${MARK} begin `)) current = { name: line.slice(`${MARK} begin `.length), out: [] };
    else if (line.startsWith(`${MARK} failed `)) {
      const m = /^IFMARK failed (.*) rc=(\d+)$/.exec(line);
      if (m) outcome.failed = { name: m[1]!, code: Number(m[2]), tail: (current?.out ?? []).slice(-20).join('\n') };
    } else if (line.startsWith(`${MARK} end `)) {
      // keep `current` for a following `failed` line
    } else if (current) current.out.push(line);
  }
  if (extras.length && extras.length !== outcome.packages.length) outcome.extrasMismatch = { packages: outcome.packages.length, lines: extras.length };
  else extras.forEach((e, i) => (outcome.packages[i]!.extra = e));
  return outcome;
}
