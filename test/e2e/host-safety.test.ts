import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDebRepo, hostAddress, serveDebRepo, type DebRepo } from '../../bench/deb-repo.js';
import { processesOfBuild } from '../../src/engine/reaper.js';
import { daemonHome, getImage, postBase, startDaemon, STRICT, waitStatus, type Daemon } from '../daemon/helpers.js';
import { tool } from '../tools.js';
import { describeWithTools } from '../tools.js';

/**
 * A template must never reach the build host, tried on a live daemon with
 * the real Debian plugin:
 * - names and URLs that point at the host are refused before any work;
 * - a template repository whose package's postinst tries to escape (the
 *   classic double chroot in perl, /proc/1/root, nsenter into pid 1's
 *   namespaces) is never installed on the host: served under a host name
 *   only the host resolves, the host never even asks for it; served where
 *   the guest reaches it, it installs in the guest, and the escapes stay
 *   there;
 * - a hostile callback leaves the daemon up;
 * - the root password, the install_script text and a repository password
 *   appear nowhere in what the run produced (logs, catalog, responses).
 */

const TAG = randomBytes(4).toString('hex');
const ROOTPW = `Root-pw-${TAG}`;
const INSTALL_SCRIPT = `d-i passwd/root-password password Install-script-${TAG}`;
const REPO_PASSWORD = `Repo-pw-${TAG}`;
const HOST_ONLY_NAME = `ifrepo-${TAG}.test`;
const MARKERS = ['chroot', 'proc1', 'nsenter'].map((how) => `/tmp/IF_ESCAPE_${TAG}_${how}`);
const BUILD_MS = 30 * 60_000;

/** A postinst that tries to leave wherever it runs for the first process's root, and says it ran. */
const ESCAPE_POSTINST = `echo "IF-ESCAPE-ATTEMPT ${TAG}"
perl -e 'mkdir "/ifx-${TAG}"; chroot "/ifx-${TAG}"; chdir ".." for 1..64; chroot "."; open(F, ">", "${MARKERS[0]}") or exit 0; print F "escaped\\n"; close F' || true
echo escaped > /proc/1/root${MARKERS[1]} 2>/dev/null || true
nsenter -t 1 -m -u -i -n -p -- sh -c 'echo escaped > ${MARKERS[2]}' 2>/dev/null || true`;

function debianTemplate(name: string, repoUrl: string, extra = ''): string {
  return `<template>
  <name>${name}</name>
  <os>
    <name>Debian</name><version>12</version><arch>x86_64</arch>
    <install type="url"><url>http://deb.debian.org/debian</url></install>
    <rootpw>${ROOTPW}</rootpw>
  </os>
  <repositories>
    <repository name="tools"><url>deb ${repoUrl} ./</url><signed>no</signed><persisted>no</persisted></repository>
  </repositories>
  <packages><package name="if-escape"/>${extra}</packages>
  <files><file name="/etc/if-host-safety">${TAG}</file></files>
  <commands><command name="show">cat /etc/if-host-safety; dpkg-query -W -f='\${Status}\\n' if-escape</command></commands>
  <disk><size>2GiB</size></disk>
</template>`;
}

const hostMarkers = () => MARKERS.filter((m) => existsSync(m));

describeWithTools([tool('dpkg-deb', ['--version']), tool('dpkg-scanpackages', ['--version']), tool('mmdebstrap', ['--version'])], 'a template never reaches the build host (live daemon, real Debian builds)', () => {
  let home: ReturnType<typeof daemonHome>;
  let daemon: Daemon;
  let hostOnlyRepo: DebRepo;
  let guestRepo: DebRepo;
  const responses: string[] = [];
  let hostsBefore: string;

  /** Every answer the test got, kept for the final grep. */
  async function keep<T extends { body: unknown }>(answer: Promise<T>): Promise<T> {
    const a = await answer;
    responses.push(JSON.stringify(a.body));
    return a;
  }

  beforeAll(async () => {
    home = daemonHome({ max_concurrent_local_sessions: 2 });
    const repoDir = join(home.root, 'repo');
    buildDebRepo(repoDir, [{ name: 'if-escape', postinst: ESCAPE_POSTINST }]);
    // The trick: a name only the host resolves, on the host's loopback.
    hostsBefore = readFileSync('/etc/hosts', 'utf8');
    writeFileSync('/etc/hosts', `${hostsBefore.trimEnd()}\n127.0.0.1 ${HOST_ONLY_NAME}\n`);
    hostOnlyRepo = await serveDebRepo(repoDir, '127.0.0.1', HOST_ONLY_NAME);
    // Where a guest on user networking reaches the host.
    guestRepo = await serveDebRepo(repoDir, hostAddress());
    daemon = await startDaemon(home.config);
  }, 60_000);

  afterAll(async () => {
    await daemon?.stop();
    await hostOnlyRepo?.close();
    await guestRepo?.close();
    if (hostsBefore !== undefined) writeFileSync('/etc/hosts', hostsBefore);
    for (const m of MARKERS) rmSync(m, { force: true });
    home?.remove();
  });

  it('refuses a "../" file name and a file:///etc/shadow content at submission, before any work', async () => {
    const escape = debianTemplate('dotdot', 'http://mirror.example.org/').replace('<file name="/etc/if-host-safety">', '<file name="/../../../../../../tmp/IF_H1">');
    const shadow = debianTemplate('shadow', 'http://mirror.example.org/').replace(`<file name="/etc/if-host-safety">${TAG}</file>`, '<file name="/etc/copied" type="url">file:///etc/shadow</file>');
    const a = await keep(postBase(daemon.url, escape, { allow_unsigned_repositories: true }, STRICT));
    const b = await keep(postBase(daemon.url, shadow, { allow_unsigned_repositories: true }, STRICT));
    expect([a.status, b.status]).toEqual([400, 400]);
    expect(a.body.error.code).toBe('template_invalid');
    expect(a.body.error.details.errors.map((e: { code: string }) => e.code)).toEqual(['invalid_file_name']);
    expect(a.body.error.message).toMatch(/^line \d+, col \d+: \/template\/files\/file\[1\]: file name "\/\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/tmp\/IF_H1" has a "\.\." component$/);
    expect(b.body.error.details.errors.map((e: { code: string }) => e.code)).toEqual(['file_url_forbidden']);
    // No image, no workdir, nothing read or written on the host.
    const list = await (await fetch(`${daemon.url}/imagefactory/base_images`)).json();
    expect(list.base_images).toEqual([]);
    expect(home.leftovers()).toEqual([]);
    expect(existsSync('/tmp/IF_H1')).toBe(false);
    expect(JSON.stringify(b.body)).not.toMatch(/root:[^:]*:\d+/);
  });

  it('survives a callback it cannot deliver to, refusing it at submission', async () => {
    const r = await keep(postBase(daemon.url, debianTemplate('cb', 'http://mirror.example.org/'), { callbacks: ['http://'], allow_unsigned_repositories: true }));
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid_callback');
    await new Promise((res) => setTimeout(res, 3000));
    expect(daemon.proc.exitCode).toBeNull();
    expect((await fetch(`${daemon.url}/imagefactory`)).status).toBe(200);
  });

  it('fails an unsigned repository without allow_unsigned_repositories before the bootstrap, naming the parameter', async () => {
    const r = await keep(postBase(daemon.url, debianTemplate('unsigned', guestRepo.url)));
    expect(r.status).toBe(202);
    const image = await waitStatus(daemon.url, r.body.base_image.id, ['FAILED', 'COMPLETE'], 60_000);
    responses.push(JSON.stringify(image));
    expect(image.status_detail.error_code).toBe('unsigned_repository_refused');
    expect(image.status_detail.error).toContain('parameters.allow_unsigned_repositories=true');
    expect(guestRepo.requests).toEqual([]);
  });

  it(
    'never asks a host-only repository for anything on the host: its package would only install in the guest, which cannot reach it',
    async () => {
      const r = await keep(postBase(daemon.url, debianTemplate('host-only-repo', hostOnlyRepo.url), { allow_unsigned_repositories: true }));
      expect(r.status).toBe(202);
      const image = await waitStatus(daemon.url, r.body.base_image.id, ['FAILED', 'COMPLETE'], BUILD_MS);
      responses.push(JSON.stringify(image));
      // The guest resolves nothing of the host's /etc/hosts: its apt cannot find the repository.
      expect(image.status).toBe('FAILED');
      expect(image.status_detail.error_code).toBe('command_failed');
      expect(image.status_detail.error_details.step).toBe('packages');
      expect(hostOnlyRepo.requests).toEqual([]);
      expect(hostMarkers()).toEqual([]);
      expect(processesOfBuild(image.id)).toEqual([]);
    },
    BUILD_MS,
  );

  it(
    'installs a repository package whose postinst tries to escape in the guest only, and the host is untouched',
    async () => {
      const url = guestRepo.url.replace('http://', `http://builder:${REPO_PASSWORD}@`);
      const started = Date.now();
      const r = await keep(
        postBase(daemon.url, debianTemplate('guest-repo', url, '<package name="jq"/>'), {
          allow_unsigned_repositories: true,
          install_script: INSTALL_SCRIPT,
          secret_parameters: ['license'],
          license: `License-${TAG}`,
        }),
      );
      expect(r.status).toBe(202);
      const id = r.body.base_image.id as string;
      const image = await waitStatus(daemon.url, id, ['FAILED', 'COMPLETE'], BUILD_MS);
      responses.push(JSON.stringify(image));
      console.log(`guest-repo build: ${((Date.now() - started) / 1000).toFixed(0)} s (packages and files in the guest)`);
      expect(image.status_detail.error).toBeNull();
      expect(image.status).toBe('COMPLETE');
      expect(image.icicle).toMatch(/<package name="if-escape_1\.0_all"/);
      expect(image.icicle).toMatch(/<package name="jq_[^"]+_amd64"/);
      const log = await (await fetch(`${daemon.url}/imagefactory/base_images/${id}/log`)).text();
      responses.push(log);
      expect(log).toContain(`guest: IF-ESCAPE-ATTEMPT ${TAG}`);
      expect(log).toContain('repository tools: used in the guest only (it is not signed)');
      expect(log).toContain(`guest: ${TAG}`); // the file, written in the guest after the packages
      // Only the guest fetched the package; nothing of it ran on the host.
      expect(guestRepo.requests.some((q) => q.includes('if-escape_1.0_all.deb'))).toBe(true);
      expect(hostMarkers()).toEqual([]);
      // REST shows no secret.
      expect(image.template).toContain('<rootpw>********</rootpw>');
      expect(image.template).toContain(`http://builder:********@`);
      expect(image.parameters).toMatchObject({ install_script: '********', license: '********' });
    },
    BUILD_MS,
  );

  it('leaves no root password, install_script, repository password or declared secret in the logs, the catalog or any response', async () => {
    const secrets = [ROOTPW, INSTALL_SCRIPT, `Install-script-${TAG}`, REPO_PASSWORD, `License-${TAG}`];
    const found: string[] = [];
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        // lstat: a bootstrapped tree (the tree cache) holds absolute symlinks that point at the host's own files.
        const st = lstatSync(p);
        if (st.isDirectory()) walk(p);
        // The image bodies are disks: the guest wrote what the template asked into them.
        else if (st.isFile() && !name.endsWith('.body') && !p.startsWith(join(home.root, 'repo'))) files.push(p);
      }
    };
    walk(home.root);
    expect(files.some((f) => f.endsWith('catalog.sqlite'))).toBe(true);
    expect(files.some((f) => f.endsWith('.log'))).toBe(true);
    const texts = [...files.map((f) => [f, readFileSync(f)] as const), ['responses', Buffer.from(responses.join('\n'))] as const, ['daemon output', Buffer.from(daemon.output())] as const];
    for (const [where, bytes] of texts) for (const s of secrets) if (bytes.includes(s)) found.push(`${s} in ${where}`);
    expect(found).toEqual([]);
  });
});
