import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_PATH, AGENT_SCRIPT, AGENT_UNIT, emptyJobDisk, guestJob, HOSTKEYS_UNIT, JOB_DISK_BYTES, JOB_HEADER, jobDiskImage, MARK, parseChannel, UNIT_NAME, writeJobDisk } from '../../src/os/debian/guest-job.js';
import { parseTdl, type Template } from '../../src/tdl/index.js';
import { tempDir } from './helpers.js';
import { describeWithTools, file } from '../tools.js';

let dir: { path: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  dir = await tempDir('debian-guest-job');
});
afterAll(async () => dir.cleanup());

const b64 = (s: string) => Buffer.from(s).toString('base64');
const SCRIPT_URL = 'http://files.example.com/setup.sh';
const AWK_COMMAND = '#!/usr/bin/awk -f\nBEGIN { print "c2 by awk" >> "/var/order"; print "awk ran" }\n';

/** A Debian template exercising every part of the job; `commands` replaces the default <commands> body. */
function jobTemplate(opts: { commands?: string; files?: string; extraCommand?: string | null } = {}): Template {
  // The package names are appended to the extra command, which prints one line per package.
  const extra = opts.extraCommand === null ? '' : `<icicle><extra_command>${opts.extraCommand ?? "printf 'about %s\\n'"}</extra_command></icicle>`;
  const xml = `<template version="1.0">
  <name>job-test</name>
  <os>
    <name>Debian</name><version>12</version><arch>x86_64</arch>
    <install type="url"><url>http://deb.debian.org/debian</url></install>
    <rootpw>changeme</rootpw>
    ${extra}
  </os>
  <repositories>
    <repository name="keep"><url>http://keep.example.com/debian</url><persisted>yes</persisted></repository>
    <repository name="drop me"><url>http://drop.example.com/debian</url><persisted>no</persisted></repository>
    <repository name="drop2"><url>http://drop2.example.com/debian</url><persisted>false</persisted></repository>
  </repositories>
  <packages><package name="nginx-light"/><package name="curl"/></packages>
  <files>
    ${
      opts.files ??
      `<file name="/etc/motd">Welcome</file>
    <file name="/opt/app/config.json" type="base64">${b64('{"a": 1}\n')}</file>`
    }
  </files>
  <precommands>
    <command name="pre one">echo pre1 &gt;&gt; /var/order</command>
    <command name="pre two">echo pre2 &gt;&gt; /var/order</command>
  </precommands>
  <commands>
    ${
      opts.commands ??
      `<command name="c1">test -f /opt/app/config.json &amp;&amp; echo c1-sees-files &gt;&gt; /var/order; echo "hello from c1"</command>
    <command name="awk-script" type="base64">${b64(AWK_COMMAND)}</command>
    <command name="from-url" type="url">${SCRIPT_URL}</command>`
    }
  </commands>
</template>`;
  const r = parseTdl(xml);
  if (!r.ok) throw new Error(`invalid test template: ${JSON.stringify(r.errors)}`);
  return r.template;
}

const fetched = () => new Map([[SCRIPT_URL, Buffer.from('echo c3 >> /var/order; echo "it\'s from a url"')]]);

type JobOpts = Parameters<typeof guestJob>[1];
const full = (over: Partial<JobOpts> = {}): JobOpts => ({ runPrecommands: true, installInGuest: ['nginx-light', 'curl'], filesInGuest: true, fetched: fetched(), ...over });

/** The labels of the job's begin markers, in order. */
function begins(job: string): string[] {
  return job
    .split('\n')
    .map((l) => /^echo "IFMARK begin "'(.*)'$/.exec(l)?.[1])
    .filter((x): x is string => x !== undefined);
}

const lineIndex = (job: string, line: string) => job.split('\n').indexOf(line);

describe('the customization agent', () => {
  it('writes to the second serial port, says it booted once the boot is done, then runs the job from the second disk', () => {
    const lines = AGENT_SCRIPT.split('\n');
    expect(lines[0]).toBe('#!/bin/sh');
    expect(lines).toContain('exec >/dev/ttyS1 2>&1');
    expect(lines).toContain('systemctl is-system-running --wait >/dev/null 2>&1');
    expect(lines).toContain(`echo "${MARK} booted $(systemctl is-system-running 2>/dev/null)"`);
    expect(AGENT_SCRIPT.match(/\/dev\/vdb/g)).toHaveLength(2);
    expect(lines.filter(Boolean).at(-1)).toBe('exec sh /run/imagefactory-job.sh');
    expect(spawnSync('sh', ['-n', '-c', AGENT_SCRIPT]).status).toBe(0);
  });

  /** The agent with its devices replaced by files of `dir` and a systemctl that says the system runs. */
  async function agentOnHost(dir: string): Promise<{ disk: string; out: string; run: () => ReturnType<typeof spawn> }> {
    const disk = join(dir, 'job.img');
    const out = join(dir, 'ttyS1');
    await mkdir(join(dir, 'bin'), { recursive: true });
    await writeFile(join(dir, 'bin', 'systemctl'), '#!/bin/sh\n[ "$1" = is-system-running ] && echo running\n', { mode: 0o755 });
    const script = AGENT_SCRIPT.replaceAll('/dev/ttyS1', out).replaceAll('/dev/vdb', disk).replaceAll('/run/imagefactory-job.sh', join(dir, 'job.sh'));
    return { disk, out, run: () => spawn('sh', ['-c', script], { env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}` }, stdio: 'ignore' }) };
  }

  it('waits for a job written after it booted, reads exactly the job past the page cache, and runs it', async () => {
    // O_DIRECT needs a real filesystem (not tmpfs): /var/tmp.
    const dir = await mkdtemp('/var/tmp/if-agent-');
    try {
      const agent = await agentOnHost(dir);
      await emptyJobDisk(agent.disk);
      expect((await stat(agent.disk)).size).toBe(JOB_DISK_BYTES);
      const proc = agent.run();
      const ended = new Promise<number | null>((r) => proc.on('close', r));
      await new Promise((r) => setTimeout(r, 700));
      expect(await readFile(agent.out, 'utf8')).toBe(`${MARK} booted running\n`);
      const job = "echo 'ran the job'\nprintf 'last line without newline'";
      expect(await writeJobDisk(agent.disk, job)).toBe(JOB_DISK_BYTES);
      expect(await ended).toBe(0);
      expect(await readFile(agent.out, 'utf8')).toBe(`${MARK} booted running\nran the job\nlast line without newline`);
      expect(await readFile(join(dir, 'job.sh'), 'utf8')).toBe(job);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lays the job disk out as a header line with the length, then the job; a job bigger than the usual disk gets a bigger one', async () => {
    expect(jobDiskImage('echo hi\n').toString()).toBe(`${JOB_HEADER} 8\necho hi\n`);
    const dir = await mkdtemp('/var/tmp/if-agent-');
    try {
      const big = `: ${'x'.repeat(JOB_DISK_BYTES)}\n`;
      const size = await writeJobDisk(join(dir, 'job.img'), big);
      expect(size).toBe(JOB_DISK_BYTES + 1048576);
      expect((await stat(join(dir, 'job.img'))).size).toBe(size);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("sets the guest's clock to the host's and stirs the host's random bytes into its pool first, when asked (a resumed guest wakes in the past)", () => {
    const now = new Date('2026-12-02T14:00:00Z');
    const entropy = Buffer.alloc(64, 7);
    const lines = guestJob(jobTemplate(), full({ hostClock: { now, entropy } })).split('\n');
    expect(lines.slice(0, 5)).toEqual([
      'set -u',
      `echo "${MARK} job-start"`,
      'export DEBIAN_FRONTEND=noninteractive',
      `date -u -s @${now.getTime() / 1000} >/dev/null`,
      `printf '%s' '${entropy.toString('base64')}' | base64 -d > /dev/urandom`,
    ]);
    expect(guestJob(jobTemplate(), full())).not.toContain('date -u -s');
  });

  it('is started by a unit wanted by multi-user.target when the job disk is there', () => {
    expect(AGENT_UNIT).toContain(`ExecStart=${AGENT_PATH}\n`);
    expect(AGENT_UNIT).toContain('ConditionPathExists=/dev/vdb\n');
    expect(AGENT_UNIT).toContain('Type=simple\n');
    expect(AGENT_UNIT).toContain('WantedBy=multi-user.target\n');
    expect(UNIT_NAME).toBe('imagefactory-customize.service');
    expect(HOSTKEYS_UNIT).toContain('ExecStart=/usr/bin/ssh-keygen -A\n');
    expect(HOSTKEYS_UNIT).toContain('ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n');
  });
});

describe('the job script', () => {
  it('runs precommands, packages and commands in that order, each framed by markers', () => {
    const job = guestJob(jobTemplate(), full());
    expect(begins(job)).toEqual(['precommand pre one', 'precommand pre two', 'packages', 'file /etc/motd', 'file /opt/app/config.json', 'command c1', 'command awk-script', 'command from-url']);
    for (const label of begins(job)) {
      const begin = lineIndex(job, `echo "IFMARK begin "'${label}'`);
      const end = lineIndex(job, `echo "IFMARK end "'${label}'" rc=$rc"`);
      const failed = lineIndex(job, `[ $rc -eq 0 ] || { echo "IFMARK failed "'${label}'" rc=$rc"; sync; systemctl poweroff --force; exit $rc; }`);
      expect(begin).toBeGreaterThan(0);
      expect(end).toBeGreaterThan(begin);
      expect(failed).toBeGreaterThan(end);
    }
    expect(job.startsWith(`set -u\necho "${MARK} job-start"\n`)).toBe(true);
  });

  it('carries each command byte for byte, base64 encoded, into a file of its own that is removed after it', () => {
    const job = guestJob(jobTemplate(), full());
    const carried = [...job.matchAll(/^printf '%s' '([A-Za-z0-9+/=]*)' \| base64 -d > (\/run\/imagefactory-\S+)$/gm)].map((m) => [m[2], Buffer.from(m[1]!, 'base64').toString()]);
    expect(carried).toEqual([
      ['/run/imagefactory-precommand-0', 'echo pre1 >> /var/order'],
      ['/run/imagefactory-precommand-1', 'echo pre2 >> /var/order'],
      ['/run/imagefactory-command-0', 'test -f /opt/app/config.json && echo c1-sees-files >> /var/order; echo "hello from c1"'],
      ['/run/imagefactory-command-1', AWK_COMMAND],
      ['/run/imagefactory-command-2', fetched().get(SCRIPT_URL)!.toString()],
    ]);
    for (const [file] of carried) expect(job).toContain(`\nrm -f ${file}\n`);
  });

  it('leaves out precommands unless asked to run them', () => {
    const job = guestJob(jobTemplate(), full({ runPrecommands: false }));
    expect(begins(job)).toEqual(['packages', 'file /etc/motd', 'file /opt/app/config.json', 'command c1', 'command awk-script', 'command from-url']);
    expect(job).not.toContain('precommand');
  });

  it('installs packages only when some are to be installed in the guest, quoted, without recommends', () => {
    const withPackages = guestJob(jobTemplate(), full({ installInGuest: ['nginx-light', "odd'name"] }));
    expect(withPackages.split('\n')).toContain("apt-get update -q && apt-get install -y -q --no-install-recommends 'nginx-light' 'odd'\\''name'");
    const without = guestJob(jobTemplate(), full({ installInGuest: [] }));
    expect(begins(without)).not.toContain('packages');
    expect(without).not.toMatch(/apt-get (update|install)/);
  });

  it('writes the files only when asked to, between packages and commands', () => {
    const job = guestJob(jobTemplate(), full());
    const motd = lineIndex(job, `mkdir -p "$(dirname '/etc/motd')" && printf '%s' '${b64('Welcome')}' | base64 -d > '/etc/motd'`);
    expect(motd).toBeGreaterThan(lineIndex(job, `echo "IFMARK end "'packages'" rc=$rc"`));
    expect(motd).toBeLessThan(lineIndex(job, `echo "IFMARK begin "'command c1'`));
    expect(job).toContain(`base64 -d > '/opt/app/config.json'`);
    const without = guestJob(jobTemplate(), full({ filesInGuest: false }));
    expect(without).not.toContain('/etc/motd');
    expect(begins(without).filter((l) => l.startsWith('file '))).toEqual([]);
  });

  it('writes a url file with its fetched bytes, and refuses one whose content was not fetched', () => {
    const url = 'http://files.example.com/banner';
    const files = `<file name="/etc/issue.net" type="url">${url}</file>`;
    const job = guestJob(jobTemplate({ files }), full({ fetched: new Map([...fetched(), [url, Buffer.from('from the web\n')]]) }));
    expect(job.split('\n')).toContain(`mkdir -p "$(dirname '/etc/issue.net')" && printf '%s' '${b64('from the web\n')}' | base64 -d > '/etc/issue.net'`);
    expect(() => guestJob(jobTemplate({ files }), full())).toThrow('file "/etc/issue.net": its url content was not fetched');
    // Without files in the guest they are written on the host: nothing to fetch for the job.
    expect(() => guestJob(jobTemplate({ files }), full({ filesInGuest: false }))).not.toThrow();
  });

  it('lists the installed packages, with the extra command only when the template has one', () => {
    const job = guestJob(jobTemplate(), full());
    const start = lineIndex(job, `echo "${MARK} icicle-begin"`);
    const end = lineIndex(job, `echo "${MARK} icicle-end"`);
    expect(end).toBeGreaterThan(start);
    const manifest = job.split('\n').slice(start + 1, end);
    expect(manifest[0]).toMatch(/^dpkg-query -W /);
    expect(manifest[0]).toContain("-f='${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\n'");
    expect(job).not.toContain('binary:Package');
    // As Oz does: the package names appended to the command text.
    expect(manifest).toContain(`sh -c 'printf '\\''about %s\\n'\\'''" $(tr '\\n' ' ' < /run/imagefactory-pkgs)" 2>/dev/null | sed 's/^/IFMARK-EXTRA\\t/'`);
    const plain = guestJob(jobTemplate({ extraCommand: null }), full());
    const plainManifest = plain.split('\n').slice(lineIndex(plain, `echo "${MARK} icicle-begin"`) + 1, lineIndex(plain, `echo "${MARK} icicle-end"`));
    expect(plainManifest).toHaveLength(1);
    expect(plain).not.toContain('EXTRA');
  });

  it('removes non-persisted repositories and every trace of the channel, then powers off', () => {
    const job = guestJob(jobTemplate(), full());
    const lines = job.split('\n');
    const tail = lines.slice(lineIndex(job, `echo "${MARK} icicle-end"`) + 1);
    expect(tail).toEqual([
      'rm -f /etc/apt/sources.list.d/imagefactory-drop_me.list',
      'rm -f /etc/apt/sources.list.d/imagefactory-drop2.list',
      'apt-get clean; rm -rf /var/lib/apt/lists/*',
      ': > /etc/machine-id; rm -f /var/lib/dbus/machine-id /var/lib/systemd/random-seed',
      'rm -f /etc/ssh/ssh_host_*',
      'find /var/log -type f -exec truncate -s 0 {} +',
      `rm -f /etc/systemd/system/multi-user.target.wants/${UNIT_NAME} /etc/systemd/system/${UNIT_NAME} ${AGENT_PATH} /run/imagefactory-*`,
      'rm -rf /tmp/* /var/tmp/*',
      `echo "${MARK} done"`,
      'sync',
      'systemctl poweroff --force',
      '',
    ]);
    expect(job).not.toContain('imagefactory-keep.list');
  });

  it('is valid sh', () => {
    const r = spawnSync('sh', ['-n', '-c', guestJob(jobTemplate(), full())], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  it('refuses a url command whose content was not fetched', () => {
    expect(() => guestJob(jobTemplate(), full({ fetched: new Map() }))).toThrow('command "from-url": its url content was not fetched');
  });
});

describe('reading the channel', () => {
  it('reads nothing from an empty log', () => {
    expect(parseChannel('')).toEqual({ booted: false, done: false, failed: null, packages: [] });
  });

  it('reads a finished job: booted, done, packages with their extra lines in package order', () => {
    const log = [
      'IFMARK booted degraded',
      'IFMARK job-start',
      "IFMARK begin command c1",
      'hello',
      'IFMARK end command c1 rc=0',
      'IFMARK icicle-begin',
      'IFMARK-PKG\tbase-files\t12.4+deb12u5\tamd64',
      'IFMARK-PKG\tlibc6\t2.36-9+deb12u4\tamd64',
      'IFMARK-PKG\ttzdata\t2024a-0+deb12u1\tall',
      'IFMARK-EXTRA\tDebian base system miscellaneous files',
      'IFMARK-EXTRA\tGNU C Library: Shared libraries\twith a tab',
      'IFMARK-EXTRA\t',
      'IFMARK icicle-end',
      'IFMARK done',
      '',
    ].join('\r\n');
    expect(parseChannel(log)).toEqual({
      booted: true,
      done: true,
      failed: null,
      packages: [
        { name: 'base-files', version: '12.4+deb12u5', arch: 'amd64', extra: 'Debian base system miscellaneous files' },
        { name: 'libc6', version: '2.36-9+deb12u4', arch: 'amd64', extra: 'GNU C Library: Shared libraries\twith a tab' },
        { name: 'tzdata', version: '2024a-0+deb12u1', arch: 'all', extra: '' },
      ],
    });
  });

  it('leaves extras null and reports no mismatch when the extra command printed nothing', () => {
    const out = parseChannel('IFMARK-PKG\ta\t1\tall\nIFMARK-PKG\tb\t2\tall\n');
    expect(out.packages.map((p) => p.extra)).toEqual([null, null]);
    expect(out).not.toHaveProperty('extrasMismatch');
  });

  it.each([
    ['more', 'IFMARK-PKG\ta\t1\tall\nIFMARK-EXTRA\tfirst\nIFMARK-EXTRA\tsecond\n', { packages: 1, lines: 2 }],
    ['fewer', 'IFMARK-PKG\ta\t1\tall\nIFMARK-PKG\tb\t2\tall\nIFMARK-PKG\tc\t3\tall\nIFMARK-EXTRA\tonly one\n', { packages: 3, lines: 1 }],
    ['any', 'IFMARK-EXTRA\twithout packages\n', { packages: 0, lines: 1 }],
  ])('reports a mismatch, assigning no extras, when the extra command printed %s lines than packages', (_what, log, mismatch) => {
    const out = parseChannel(log);
    expect(out.extrasMismatch).toEqual(mismatch);
    expect(out.packages.every((p) => p.extra === null)).toBe(true);
  });

  it('reads a failed command: its name, exit code and the last 20 lines of its own output', () => {
    const own = Array.from({ length: 25 }, (_, i) => `line ${i + 1}`);
    const log = [
      'IFMARK booted running',
      'IFMARK job-start',
      'IFMARK begin command first',
      'output of first',
      'IFMARK end command first rc=0',
      'IFMARK begin command second one',
      ...own,
      'IFMARK end command second one rc=3',
      'IFMARK failed command second one rc=3',
    ].join('\n');
    expect(parseChannel(log)).toEqual({ booted: true, done: false, failed: { name: 'command second one', code: 3, tail: own.slice(5).join('\n') }, packages: [] });
  });

  it('reads a failed package install with a short tail', () => {
    const log = ['IFMARK begin packages', 'E: Unable to locate package nope', 'IFMARK end packages rc=100', 'IFMARK failed packages rc=100', ''].join('\n');
    expect(parseChannel(log).failed).toEqual({ name: 'packages', code: 100, tail: 'E: Unable to locate package nope' });
  });

  it.each(['\n', '\r\n'])('splits an end or failed marker glued to output without a final newline (lines ending %j)', (eol) => {
    const log = ['IFMARK booted running', 'IFMARK begin command x', 'first line', 'no newlineIFMARK end command x rc=2', 'IFMARK failed command x rc=2', ''].join(eol);
    expect(parseChannel(log)).toEqual({ booted: true, done: false, failed: { name: 'command x', code: 2, tail: 'first line\nno newline' }, packages: [] });
    // Glued straight to the failed marker too.
    expect(parseChannel('IFMARK begin packages\nE: brokenIFMARK failed packages rc=100\n').failed).toEqual({ name: 'packages', code: 100, tail: 'E: broken' });
  });

  it('does not take a command that only printed the word for done or booted', () => {
    const out = parseChannel(['IFMARK begin command x', 'IFMARK done soon', 'booted IFMARK booted', 'IFMARK end command x rc=0'].join('\n'));
    expect(out).toMatchObject({ booted: false, done: false, failed: null });
  });
});

// ---------------------------------------------------------------------------
// The job run for real, in a chroot: dash and mawk from the host (as in a Debian
// guest), busybox for the other tools, stubs for systemctl, dpkg-query, apt-get
// and sync. Nothing outside the chroot is touched.

const STUBS: Record<string, string> = {
  systemctl: '#!/bin/sh\necho "systemctl $*" >> /stub.log\n',
  'apt-get': '#!/bin/sh\necho "apt-get $*" >> /stub.log\necho "apt says $1"\nexit "$(cat /apt-rc 2>/dev/null || echo 0)"\n',
  'dpkg-query': `#!/bin/sh
case "$*" in
  *Version*) printf 'ii \\tbase-files\\t12.4\\tamd64\\nrc \\tgone\\t1.0\\tamd64\\nii \\tnginx-light\\t1.22.1-9\\tamd64\\n' ;;
  *) printf 'ii  base-files\\nrc  gone\\nii  nginx-light\\n' ;;
esac
`,
  sync: '#!/bin/sh\n:\n',
};

/** Host programs copied into the chroot with their libraries. */
const HOST_PROGRAMS: Record<string, string> = { '/bin/sh': '/bin/dash', '/usr/bin/awk': '/usr/bin/mawk' };

function librariesOf(program: string): string[] {
  const out = spawnSync('ldd', [program], { encoding: 'utf8' }).stdout ?? '';
  return [...out.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
}

/** What the chroot is made of, and chroot itself (root only). */
const CHROOT_TOOLS = [file('/bin/dash', 'dash'), file('/usr/bin/mawk', 'mawk'), file('/bin/busybox', 'busybox-static'), { name: 'chroot (as root)', command: 'chroot', args: ['/', '/bin/true'] }];

/** A chroot that looks like a Debian guest just before its customization. */
async function makeGuestRoot(name: string, job: string, aptRc = 0): Promise<string> {
  const root = join(dir.path, name);
  for (const d of ['bin', 'usr/bin', 'dev', 'run', 'root', 'tmp/sub', 'var/tmp', 'var/log/apt', 'var/lib/apt/lists', 'var/lib/dbus', 'etc/ssh', 'etc/apt/sources.list.d', 'etc/systemd/system/multi-user.target.wants', 'usr/local/sbin']) {
    await mkdir(join(root, d), { recursive: true });
  }
  await copyFile('/bin/busybox', join(root, 'bin/busybox'));
  const applets = spawnSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const a of applets) if (!['sh', 'ash', 'awk', 'sync', 'busybox'].includes(a)) await symlink('busybox', join(root, 'bin', a));
  for (const [at, from] of Object.entries(HOST_PROGRAMS)) {
    await copyFile(from, join(root, at));
    for (const lib of librariesOf(from)) {
      await mkdir(join(root, dirname(lib)), { recursive: true });
      if (!existsSync(join(root, lib))) await copyFile(lib, join(root, lib));
    }
  }
  for (const [stub, text] of Object.entries(STUBS)) await writeFile(join(root, 'usr/bin', stub), text, { mode: 0o755 });
  const files: Record<string, string> = {
    'etc/machine-id': '0123456789abcdef0123456789abcdef\n',
    'var/lib/dbus/machine-id': '0123456789abcdef0123456789abcdef\n',
    'etc/ssh/ssh_host_ed25519_key': 'secret',
    'etc/ssh/ssh_host_ed25519_key.pub': 'public',
    'etc/ssh/sshd_config': 'PermitRootLogin no\n',
    'etc/apt/sources.list.d/imagefactory-keep.list': 'deb [trusted=yes] http://keep.example.com/debian bookworm main\n',
    'etc/apt/sources.list.d/imagefactory-drop_me.list': 'deb [trusted=yes] http://drop.example.com/debian bookworm main\n',
    'etc/apt/sources.list.d/imagefactory-drop2.list': 'deb [trusted=yes] http://drop2.example.com/debian bookworm main\n',
    'etc/apt/sources.list.d/other.list': 'deb http://other.example.com/debian bookworm main\n',
    'var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease': 'x',
    'var/log/syslog': 'boot messages\n',
    'var/log/apt/history.log': 'history\n',
    [`etc/systemd/system/${UNIT_NAME}`]: AGENT_UNIT,
    'etc/systemd/system/imagefactory-ssh-hostkeys.service': HOSTKEYS_UNIT,
    [AGENT_PATH.slice(1)]: AGENT_SCRIPT,
    'tmp/sub/junk': 'junk',
    'tmp/.hidden': 'hidden',
    'var/tmp/junk': 'junk',
    'run/imagefactory-job.sh': job,
    'apt-rc': String(aptRc),
  };
  for (const [path, text] of Object.entries(files)) await writeFile(join(root, path), text);
  await symlink(`/etc/systemd/system/${UNIT_NAME}`, join(root, 'etc/systemd/system/multi-user.target.wants', UNIT_NAME));
  return root;
}

/** Runs the job as the agent does (`sh /run/imagefactory-job.sh`, stderr with stdout) inside the chroot. */
function runJob(root: string): { status: number | null; log: string } {
  const r = spawnSync('chroot', [root, '/bin/sh', '-c', 'exec sh /run/imagefactory-job.sh 2>&1'], {
    encoding: 'utf8',
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C' },
    timeout: 20_000,
  });
  return { status: r.status, log: r.stdout + r.stderr };
}

const read = (root: string, path: string) => readFile(join(root, path), 'utf8');
const stubLog = async (root: string) => (await read(root, 'stub.log')).trim().split('\n');

describeWithTools(CHROOT_TOOLS, 'the job run in a chroot with stubbed system tools', () => {
  it('runs everything in order, reports the manifest, cleans up and powers off', async () => {
    const root = await makeGuestRoot('ok-root', guestJob(jobTemplate(), full()));
    const { status, log } = runJob(root);
    expect(status, log).toBe(0);

    // What the host will read from the channel.
    expect(parseChannel(log)).toEqual({
      booted: false, // the agent, not the job, says that
      done: true,
      failed: null,
      packages: [
        { name: 'base-files', version: '12.4', arch: 'amd64', extra: 'about base-files' },
        { name: 'nginx-light', version: '1.22.1-9', arch: 'amd64', extra: 'about nginx-light' },
      ],
    });
    expect(log).toContain('hello from c1\n');
    expect(log).toContain('awk ran\n');
    expect(log).toContain("it's from a url\n");

    // Precommands, packages, files, commands: in that order, the shebang honoured.
    expect(await read(root, 'var/order')).toBe('pre1\npre2\nc1-sees-files\nc2 by awk\nc3\n');
    expect(await stubLog(root)).toEqual(['apt-get update -q', 'apt-get install -y -q --no-install-recommends nginx-light curl', 'apt-get clean', 'systemctl poweroff --force']);
    expect(await read(root, 'etc/motd')).toBe('Welcome');
    expect(await read(root, 'opt/app/config.json')).toBe('{"a": 1}\n');

    // Clean for reuse.
    expect(await read(root, 'etc/machine-id')).toBe('');
    expect(existsSync(join(root, 'var/lib/dbus/machine-id'))).toBe(false);
    expect(await readdir(join(root, 'etc/ssh'))).toEqual(['sshd_config']);
    expect((await readdir(join(root, 'etc/apt/sources.list.d'))).sort()).toEqual(['imagefactory-keep.list', 'other.list']);
    expect(await readdir(join(root, 'var/lib/apt/lists'))).toEqual([]);
    expect((await stat(join(root, 'var/log/syslog'))).size).toBe(0);
    expect((await stat(join(root, 'var/log/apt/history.log'))).size).toBe(0);
    expect(existsSync(join(root, 'etc/systemd/system', UNIT_NAME))).toBe(false);
    expect(await readdir(join(root, 'etc/systemd/system/multi-user.target.wants'))).toEqual([]);
    expect(existsSync(join(root, 'etc/systemd/system/imagefactory-ssh-hostkeys.service'))).toBe(true);
    expect(existsSync(join(root, AGENT_PATH))).toBe(false);
    expect(await readdir(join(root, 'run'))).toEqual([]);
    expect(await readdir(join(root, 'tmp'))).toEqual(['.hidden']);
    expect(await readdir(join(root, 'var/tmp'))).toEqual([]);
  });

  it('stops at a failing command with its exit code and output, powers off, and skips the rest and the clean-up', async () => {
    const commands = `<command name="first">echo first &gt;&gt; /var/order</command>
    <command name="it fails">i=1; while [ $i -le 25 ]; do echo "out $i"; i=$((i+1)); done; echo "to stderr" &gt;&amp;2; exit 3</command>
    <command name="never">echo never &gt;&gt; /var/order</command>`;
    const root = await makeGuestRoot('fail-root', guestJob(jobTemplate({ commands }), full({ runPrecommands: false, installInGuest: [] })));
    const { status, log } = runJob(root);
    expect(status, log).toBe(3);
    const tail = [...Array.from({ length: 25 }, (_, i) => `out ${i + 1}`), 'to stderr'].slice(-20).join('\n');
    expect(parseChannel(log)).toEqual({ booted: false, done: false, failed: { name: 'command it fails', code: 3, tail }, packages: [] });
    expect(await read(root, 'var/order')).toBe('first\n');
    expect(await stubLog(root)).toEqual(['systemctl poweroff --force']);
    expect(await read(root, 'etc/machine-id')).not.toBe('');
    expect(await read(root, 'etc/motd')).toBe('Welcome');
  });

  it('stops at a file that cannot be written, naming it, before any command', async () => {
    // /etc/ssh is a directory in the guest: the write fails.
    const files = `<file name="/etc/before">ok</file>
    <file name="/etc/ssh">not a directory</file>
    <file name="/etc/after">never</file>`;
    const root = await makeGuestRoot('file-root', guestJob(jobTemplate({ files }), full({ runPrecommands: false, installInGuest: [] })));
    const { status, log } = runJob(root);
    const out = parseChannel(log);
    expect(out.failed, log).toMatchObject({ name: 'file /etc/ssh' });
    expect(out.failed!.code).toBeGreaterThan(0);
    expect(status).toBe(out.failed!.code);
    expect(out.done).toBe(false);
    expect(await read(root, 'etc/before')).toBe('ok');
    expect(existsSync(join(root, 'etc/after'))).toBe(false);
    expect(existsSync(join(root, 'var/order'))).toBe(false);
    expect(await stubLog(root)).toEqual(['systemctl poweroff --force']);
  });

  it('reports the output of a failing command that printed no final newline', async () => {
    const commands = `<command name="terse">printf 'half a line'; exit 4</command>`;
    const root = await makeGuestRoot('terse-root', guestJob(jobTemplate({ commands }), full({ runPrecommands: false, installInGuest: [], filesInGuest: false })));
    const { status, log } = runJob(root);
    expect(status, log).toBe(4);
    expect(parseChannel(log).failed).toEqual({ name: 'command terse', code: 4, tail: 'half a line' });
  });

  it('reports an extra command that does not print one line per package as a mismatch', async () => {
    const root = await makeGuestRoot('extra-root', guestJob(jobTemplate({ extraCommand: 'echo one line for' }), full({ runPrecommands: false, installInGuest: [], filesInGuest: false })));
    const { status, log } = runJob(root);
    expect(status, log).toBe(0);
    const out = parseChannel(log);
    expect(log).toContain('IFMARK-EXTRA\tone line for base-files nginx-light\n');
    expect(out).toMatchObject({ done: true, failed: null, extrasMismatch: { packages: 2, lines: 1 } });
    expect(out.packages.map((p) => p.extra)).toEqual([null, null]);
  });

  it('stops at a failing package install before any command', async () => {
    const root = await makeGuestRoot('apt-root', guestJob(jobTemplate(), full({ runPrecommands: false })), 100);
    const { status, log } = runJob(root);
    expect(status, log).toBe(100);
    expect(parseChannel(log).failed).toEqual({ name: 'packages', code: 100, tail: 'apt says update' });
    expect(await stubLog(root)).toEqual(['apt-get update -q', 'systemctl poweroff --force']);
    expect(existsSync(join(root, 'var/order'))).toBe(false);
  });
});
