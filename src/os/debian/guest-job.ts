import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Command, Content, Template } from '../../tdl/index.js';
import { repositoryFile } from './bootstrap.js';
import { shellQuote } from '../../shell-quote.js';
import { isAptKeyFile } from './repositories.js';

/**
 * The customization channel. The image carries a one-shot systemd unit
 * that, once the system is up, reads a job script from a second virtio disk
 * and runs it with its output on the second serial port. The host reads
 * that port's log: nothing needs a network, a key or an agent in the guest,
 * and the unit removes itself before the guest powers off.
 *
 * The agent says it booted, then waits for the disk to start with JOB_HEADER,
 * reading past its page cache: the host may write the job only then, after
 * it has saved the booted guest as a checkpoint (boot-checkpoint.ts), and a
 * guest resumed from that checkpoint reads the job of the build resuming it.
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
/** The job disk's first line, with the job's length: the agent runs nothing before the disk starts with it. */
export const JOB_HEADER = '#IFJOB';
/** The job disk's size: fixed, since a guest resumed from a checkpoint still sees the size it booted with. */
export const JOB_DISK_BYTES = 64 * 1048576;

/** The job disk's content: the header line, then the job. */
export function jobDiskImage(job: string): Buffer {
  const body = Buffer.from(job);
  return Buffer.concat([Buffer.from(`${JOB_HEADER} ${body.length}\n`), body]);
}

/**
 * Writes the job onto its disk, the header last: a guest already polling
 * never reads a job half written. The disk is JOB_DISK_BYTES (zeros beyond
 * the job) unless the job needs more; returns its size.
 */
export async function writeJobDisk(path: string, job: string): Promise<number> {
  const image = jobDiskImage(job);
  const sizeBytes = Math.max(JOB_DISK_BYTES, Math.ceil(image.length / 1048576) * 1048576);
  const fh = await open(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  try {
    await fh.truncate(sizeBytes);
    const headerEnd = image.indexOf(0x0a) + 1;
    await fh.write(image, headerEnd, image.length - headerEnd, headerEnd);
    await fh.datasync();
    await fh.write(image, 0, headerEnd, 0);
  } finally {
    await fh.close();
  }
  return sizeBytes;
}

/** An empty job disk of the usual size, for a guest whose job is written once it has booted. */
export async function emptyJobDisk(path: string): Promise<void> {
  const fh = await open(path, 'w', 0o600);
  try {
    await fh.truncate(JOB_DISK_BYTES);
  } finally {
    await fh.close();
  }
}

export const AGENT_SCRIPT = `#!/bin/sh
# imagefactory build-time customization; removed before the image is finished.
exec >/dev/ttyS1 2>&1
systemctl is-system-running --wait >/dev/null 2>&1
echo "${MARK} booted $(systemctl is-system-running 2>/dev/null)"
# The job disk's first line is "${JOB_HEADER} <bytes>"; until the host writes it, the disk is zeros.
until head=$(dd if=/dev/vdb bs=4096 count=1 iflag=direct 2>/dev/null | head -n 1 | tr -d '\\000'); [ "\${head%% *}" = '${JOB_HEADER}' ]; do sleep 0.1; done
len=\${head#* }
skip=$((\${#head} + 1))
dd if=/dev/vdb bs=1M count=$(( (skip + len + 1048575) / 1048576 )) iflag=direct 2>/dev/null | tail -c +$((skip + 1)) 2>/dev/null | head -c "$len" > /run/imagefactory-job.sh
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
export interface GuestJobOptions {
  runPrecommands: boolean;
  installInGuest: string[];
  filesInGuest: boolean;
  fetched: Map<string, Buffer>;
  /** Repositories only the guest may use (see repositories.ts): their sources.list.d files, written before anything runs. */
  guestSources?: { name: string; text: string }[];
  /** apt options for those repositories (TLS verification off for sslverify=no hosts). */
  guestAptOptions?: string[];
  /** The host's time and fresh random bytes, given to the guest first: it may have been resumed from a checkpoint. */
  hostClock?: { now: Date; entropy: Buffer };
}

/** A block that writes `data` at `path` in the guest, framed by markers, stopping the job if it fails. */
function writeBlock(label: string, path: string, data: Buffer): string[] {
  const quoted = shellQuote(label);
  return [
    `echo "${MARK} begin "${quoted}`,
    `mkdir -p "$(dirname ${shellQuote(path)})" && printf '%s' ${shellQuote(data.toString('base64'))} | base64 -d > ${shellQuote(path)}`,
    'rc=$?',
    `echo "${MARK} end "${quoted}" rc=$rc"`,
    `[ $rc -eq 0 ] || ${failWith(quoted)}`,
  ];
}

export function guestJob(template: Template, opts: GuestJobOptions): string {
  const lines = ['set -u', `echo "${MARK} job-start"`, 'export DEBIAN_FRONTEND=noninteractive'];
  // A guest resumed from a checkpoint wakes with the clock and the random pool of the moment it was saved.
  if (opts.hostClock) {
    lines.push(
      `date -u -s @${Math.floor(opts.hostClock.now.getTime() / 1000)} >/dev/null`,
      `printf '%s' ${shellQuote(opts.hostClock.entropy.toString('base64'))} | base64 -d > /dev/urandom`,
    );
  }
  // The guest's own repositories, and the template's apt keys with them, come first, as they did when the host wrote them.
  for (const source of opts.guestSources ?? []) lines.push(...writeBlock(`repository ${source.name}`, `/etc/apt/sources.list.d/${source.name}`, Buffer.from(source.text)));
  if (opts.guestAptOptions?.length) lines.push(...writeBlock('apt options', '/etc/apt/apt.conf.d/90imagefactory-repositories', Buffer.from(opts.guestAptOptions.map((o) => `${o};\n`).join(''))));
  const keyFiles = opts.filesInGuest ? template.files.filter((f) => isAptKeyFile(f.name)) : [];
  for (const f of keyFiles) lines.push(...writeBlock(`file ${f.name}`, f.name, contentBytes(`file "${f.name}"`, f.content, opts.fetched)));
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
    for (const f of template.files.filter((x) => !keyFiles.includes(x))) lines.push(...writeBlock(`file ${f.name}`, f.name, contentBytes(`file "${f.name}"`, f.content, opts.fetched)));
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
    ': > /etc/machine-id; rm -f /var/lib/dbus/machine-id /var/lib/systemd/random-seed',
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
  /** The guest listed more packages than are kept (CHANNEL_LIMITS.packages). */
  manifestTruncated?: boolean;
}

/** Bounds of what is kept of a guest's channel, whatever it prints. */
export const CHANNEL_LIMITS = { tailLines: 20, tailLineChars: 2000, packages: 100_000 };

/**
 * Reads the channel line by line as the guest writes it, keeping only what
 * the outcome needs: the markers, the manifest (bounded), and the last lines
 * of the command running now.
 */
export class ChannelParser {
  private readonly result: JobOutcome = { booted: false, done: false, failed: null, packages: [] };
  private readonly extras: string[] = [];
  private current: { name: string; out: string[] } | null = null;

  line(raw: string): void {
    // A command whose output lacks a final newline has the end marker glued to its last line.
    const glued = raw.search(new RegExp(`${MARK} (?:end|failed) .* rc=\\d+\\r?$`));
    if (glued > 0) {
      this.one(raw.slice(0, glued));
      this.one(raw.slice(glued));
    } else this.one(raw);
  }

  private one(raw: string): void {
    const line = raw.replace(/\r$/, '');
    const r = this.result;
    if (line.startsWith(`${MARK} booted`)) r.booted = true;
    else if (line === `${MARK} done`) r.done = true;
    else if (line.startsWith(`${MARK}-PKG\t`)) {
      const [, name, version, arch] = line.split('\t');
      if (r.packages.length < CHANNEL_LIMITS.packages) r.packages.push({ name: name!, version: version!, arch: arch!, extra: null });
      else r.manifestTruncated = true;
    } else if (line.startsWith(`${MARK}-EXTRA\t`)) {
      if (this.extras.length <= CHANNEL_LIMITS.packages) this.extras.push(line.slice(MARK.length + 7));
    } else if (line.startsWith(`${MARK} begin `)) this.current = { name: line.slice(`${MARK} begin `.length), out: [] };
    else if (line.startsWith(`${MARK} failed `)) {
      const m = /^IFMARK failed (.*) rc=(\d+)$/.exec(line);
      if (m) r.failed = { name: m[1]!, code: Number(m[2]), tail: (this.current?.out ?? []).join('\n') };
    } else if (line.startsWith(`${MARK} end `)) {
      // keep `current` for a following `failed` line
    } else if (this.current) {
      const out = this.current.out;
      out.push(line.length > CHANNEL_LIMITS.tailLineChars ? `${line.slice(0, CHANNEL_LIMITS.tailLineChars)}…` : line);
      if (out.length > CHANNEL_LIMITS.tailLines) out.shift();
    }
  }

  outcome(): JobOutcome {
    const r = { ...this.result, packages: this.result.packages.map((p) => ({ ...p })) };
    if (this.extras.length && this.extras.length !== r.packages.length) r.extrasMismatch = { packages: r.packages.length, lines: this.extras.length };
    else this.extras.forEach((e, i) => (r.packages[i]!.extra = e));
    return r;
  }
}

/** Reads a whole channel log the guest wrote. */
export function parseChannel(log: string): JobOutcome {
  const parser = new ChannelParser();
  for (const line of log.split('\n')) parser.line(line);
  return parser.outcome();
}
