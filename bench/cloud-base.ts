import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildLocally } from '../src/cli/local-build.js';
import { loadTargetContent, mergeTargetContent, targetContentFor } from '../src/clouds/target-content.js';
import { parseTdlOrThrow } from '../src/tdl/index.js';
import { PROJECT_ROOT } from '../src/version.js';

/**
 * One real Debian 12 base image for the cloud-plugin tests, built once with
 * the project's own local build and kept in /var/tmp/imagefactory-cloud-fixture between
 * runs (delete the directory to rebuild it). Small on purpose: no extra
 * packages, a 2 GiB disk, the cloud kernel (the Debian plugin's default).
 *
 * Two variants: `plain` (what a template without target content gives) and
 * `cloud`, whose template has the shipped target content of the
 * ec2, openstack-kvm and libvirt targets merged in (mergeTargetContent), so the
 * bootstrap installed cloud-init and qemu-guest-agent: targets made from it
 * need no adaptation boot.
 *
 * Run by hand: `npx tsx bench/cloud-base.ts [plain|cloud]`. Shared by the
 * cloud tests (test/clouds/) and the targets benchmark.
 */

export const FIXTURE_DIR = process.env.IMAGEFACTORY_CLOUD_FIXTURE ?? '/var/tmp/imagefactory-cloud-fixture';
export const FIXTURE_ROOTPW = 'h12-fixture-pw';
export const FIXTURE_DISK_BYTES = 2 * 1024 ** 3;

export type FixtureVariant = 'plain' | 'cloud';
export const MERGED_TARGETS = ['ec2', 'openstack-kvm', 'libvirt'];

const TEMPLATE = `<template>
  <name>h12-cloud-fixture</name>
  <description>imagefactory cloud plugin test base</description>
  <os>
    <name>Debian</name><version>12</version><arch>x86_64</arch>
    <install type="url"><url>http://deb.debian.org/debian</url></install>
    <rootpw>${FIXTURE_ROOTPW}</rootpw>
  </os>
  <files><file name="/etc/h12-fixture">base image of the cloud tests</file></files>
  <disk><size>2GiB</size></disk>
</template>`;

export interface BaseFixture {
  /** The frozen base body (qcow2); tests must never write to it. */
  path: string;
  format: 'qcow2';
  sha256: string;
  template: string;
  rootpw: string;
  virtualSize: number;
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Waits for (or takes) the build lock: test files run in parallel and must not build twice. */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = join(FIXTURE_DIR, '.lock');
  await mkdir(FIXTURE_DIR, { recursive: true });
  const deadline = Date.now() + 40 * 60_000;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`${lock} held for 40 minutes; remove it if no build runs`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** The fixture's template text; for `cloud`, with the merged packages written into it. */
async function templateOf(variant: FixtureVariant): Promise<string> {
  if (variant === 'plain') return TEMPLATE;
  const content = await loadTargetContent(join(PROJECT_ROOT, 'conf', 'target_content.xml'));
  let merged = parseTdlOrThrow(TEMPLATE);
  for (const target of MERGED_TARGETS) merged = mergeTargetContent(merged, targetContentFor(content, target, merged));
  const packages = merged.packages.map((p) => `<package name="${p.name}"/>`).join('');
  return TEMPLATE.replace('<name>h12-cloud-fixture</name>', '<name>h12-cloud-fixture-merged</name>').replace('<files>', `<packages>${packages}</packages>\n  <files>`);
}

export async function ensureBaseImage(variant: FixtureVariant = 'plain', out: NodeJS.WritableStream = process.stderr): Promise<BaseFixture> {
  const meta = join(FIXTURE_DIR, variant === 'plain' ? 'base.json' : `base-${variant}.json`);
  return withLock(async () => {
    const template = await templateOf(variant);
    if (existsSync(meta)) {
      const fixture = JSON.parse(await readFile(meta, 'utf8')) as BaseFixture;
      // A fixture of another template (the shipped target content changed) is built again.
      if (existsSync(fixture.path) && fixture.template === template) return fixture;
    }
    const dataDir = join(FIXTURE_DIR, 'data');
    await rm(dataDir, { recursive: true, force: true });
    const { image, exitCode } = await buildLocally(template, { dataDir, hypervisor: 'qemu', packageCache: null, out });
    if (exitCode !== 0 || !image.bodyPath) throw new Error(`the fixture base build ended ${image.status}: ${image.error?.code}: ${image.error?.message}`);
    const path = join(FIXTURE_DIR, variant === 'plain' ? 'base.qcow2' : `base-${variant}.qcow2`);
    await rm(path, { force: true });
    await link(image.bodyPath, path);
    await rm(dataDir, { recursive: true, force: true });
    const fixture: BaseFixture = { path, format: 'qcow2', sha256: await sha256(path), template, rootpw: FIXTURE_ROOTPW, virtualSize: FIXTURE_DISK_BYTES };
    await writeFile(meta, JSON.stringify(fixture, null, 2));
    return fixture;
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const f = await ensureBaseImage((process.argv[2] as FixtureVariant | undefined) ?? 'plain', process.stdout);
  console.log(JSON.stringify(f, null, 2));
}
