import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Arch } from '../../tdl/index.js';
import { debianArch, identifyDistro, type DistroFamily } from '../answer/distro.js';
import { describeUrl } from './download-cache.js';
import { MediaError } from './errors.js';

export interface InstallerLocation {
  family: DistroFamily;
  kernelUrl: string;
  initrdUrl: string;
  /** How it was found: `.treeinfo`, or the conventional path that answered. */
  foundBy: 'treeinfo' | 'path';
}

export interface TreeProbe {
  /** The text at `url`, or null when there is none (404, no such file). */
  text(url: string, signal?: AbortSignal): Promise<string | null>;
  /** Whether something is at `url`. */
  exists(url: string, signal?: AbortSignal): Promise<boolean>;
}

/**
 * Finds the installer kernel and initrd of a url install's tree:
 * Red Hat trees through `.treeinfo` (`[images-<arch>]` kernel/initrd),
 * falling back to `images/pxeboot/vmlinuz` + `initrd.img`; Debian through
 * the netboot images under `dists/<suite>/main/installer-<debarch>/current`;
 * Ubuntu the same, then its `legacy-images` (20.04).
 */
export async function locateInstaller(
  treeUrl: string,
  os: { name: string; version: string; arch: Arch },
  options: { probe?: TreeProbe; signal?: AbortSignal } = {},
): Promise<InstallerLocation> {
  const probe = options.probe ?? httpProbe;
  const distro = identifyDistro(os);
  const base = treeUrl.trim().replace(/\/*$/, '/');
  const tried: string[] = [];

  if (distro.family === 'redhat') {
    const treeinfoUrl = new URL('.treeinfo', base).toString();
    const treeinfo = await probe.text(treeinfoUrl, options.signal);
    if (treeinfo !== null) {
      const images = parseIni(treeinfo)[`images-${os.arch}`];
      if (images?.['kernel'] && images['initrd']) {
        return { family: 'redhat', kernelUrl: new URL(images['kernel'], base).toString(), initrdUrl: new URL(images['initrd'], base).toString(), foundBy: 'treeinfo' };
      }
      tried.push(`${describeUrl(treeinfoUrl)} [images-${os.arch}]`);
    } else {
      tried.push(describeUrl(treeinfoUrl));
    }
    const found = await firstPresent(probe, base, [['images/pxeboot/vmlinuz', 'images/pxeboot/initrd.img']], tried, options.signal);
    if (found) return { family: 'redhat', ...found, foundBy: 'path' };
  } else {
    if (!distro.suite) throw new MediaError('installer_not_found', `no installer tree layout is known for ${distro.label}`);
    const arch = debianArch(os.arch);
    const current = `dists/${distro.suite}/main/installer-${arch}/current`;
    const flavour = distro.family === 'debian' ? 'debian-installer' : 'ubuntu-installer';
    const candidates: [string, string][] = [[`${current}/images/netboot/${flavour}/${arch}/linux`, `${current}/images/netboot/${flavour}/${arch}/initrd.gz`]];
    if (distro.family === 'ubuntu') candidates.push([`${current}/legacy-images/netboot/${flavour}/${arch}/linux`, `${current}/legacy-images/netboot/${flavour}/${arch}/initrd.gz`]);
    const found = await firstPresent(probe, base, candidates, tried, options.signal);
    if (found) return { family: distro.family, ...found, foundBy: 'path' };
  }
  throw new MediaError('installer_not_found', `no installer kernel and initrd for ${distro.label} ${os.arch} in ${describeUrl(treeUrl)}; looked at ${tried.join(', ')}`, { tried });
}

async function firstPresent(
  probe: TreeProbe,
  base: string,
  candidates: [string, string][],
  tried: string[],
  signal?: AbortSignal,
): Promise<{ kernelUrl: string; initrdUrl: string } | null> {
  for (const [kernel, initrd] of candidates) {
    const kernelUrl = new URL(kernel, base).toString();
    const initrdUrl = new URL(initrd, base).toString();
    if ((await probe.exists(kernelUrl, signal)) && (await probe.exists(initrdUrl, signal))) return { kernelUrl, initrdUrl };
    tried.push(describeUrl(kernelUrl));
  }
  return null;
}

/** `.treeinfo` is an INI file: `[section]` then `key = value`. */
export function parseIni(text: string): Record<string, Record<string, string>> {
  const sections: Record<string, Record<string, string>> = {};
  let current: Record<string, string> | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = sections[section[1]!.trim()] ??= {};
      continue;
    }
    const pair = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(line);
    if (pair && current) current[pair[1]!] = pair[2]!;
  }
  return sections;
}

/** Reads trees over http(s) (HEAD for presence, falling back to GET) and file://. */
export const httpProbe: TreeProbe = {
  async text(url, signal) {
    const parsed = new URL(url);
    if (parsed.protocol === 'file:') {
      return readFile(fileURLToPath(parsed), 'utf8').catch(() => null);
    }
    const response = await fetchOrFail(url, 'GET', signal);
    if (response.status === 404 || response.status === 410) return null;
    if (!response.ok) throw new MediaError('download_failed', `GET ${describeUrl(url)}: HTTP ${response.status}`);
    return response.text();
  },
  async exists(url, signal) {
    const parsed = new URL(url);
    if (parsed.protocol === 'file:') return stat(fileURLToPath(parsed)).then((s) => s.isFile(), () => false);
    let response = await fetchOrFail(url, 'HEAD', signal);
    if (response.status === 405 || response.status === 501) {
      response = await fetchOrFail(url, 'GET', signal);
      await response.body?.cancel().catch(() => {});
    }
    return response.ok;
  },
};

async function fetchOrFail(url: string, method: 'GET' | 'HEAD', signal?: AbortSignal): Promise<Response> {
  try {
    return await fetch(url, { method, redirect: 'follow', ...(signal ? { signal } : {}) });
  } catch (error) {
    if (signal?.aborted) throw new MediaError('download_aborted', `${method} ${describeUrl(url)} was aborted`);
    throw new MediaError('download_failed', `${method} ${describeUrl(url)}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
