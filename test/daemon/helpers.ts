import { fileURLToPath } from 'node:url';
import { daemonHome as home } from '../../bench/daemon-process.js';

export { startDaemon, type Daemon } from '../../bench/daemon-process.js';
export const TEST_PLUGINS = fileURLToPath(new URL('../fixtures/plugins/', import.meta.url));

/** A scratch area whose configuration points storage, imgdir, tmpdir and plugins (the test plugins) into it. */
export const daemonHome = (extra: Record<string, unknown> = {}) => home(TEST_PLUGINS, extra);

export function template(version: string, os = 'TestOS'): string {
  return `<template>\n  <name>t-${version}</name>\n  <os><name>${os}</name><version>${version}</version><arch>x86_64</arch><install type="url"><url>http://mirror.example.com/</url></install><rootpw>s3cret-pw</rootpw></os>\n</template>`;
}

export async function postBase(url: string, tdl: string, parameters: Record<string, unknown> = {}) {
  const res = await fetch(`${url}/imagefactory/base_images`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ base_image: { template: tdl, parameters } }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

export async function getImage(url: string, id: string) {
  const res = await fetch(`${url}/imagefactory/base_images/${id}`);
  return (await res.json()).base_image as Record<string, any>;
}

/** Polls until the image's status is one of `statuses`. */
export async function waitStatus(url: string, id: string, statuses: string[], timeoutMs = 30_000): Promise<Record<string, any>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const image = await getImage(url, id);
    if (statuses.includes(image.status)) return image;
    if (Date.now() > end) throw new Error(`image ${id} is ${image.status}/${image.phase}, not ${statuses.join('|')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function waitPhase(url: string, id: string, phase: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while ((await getImage(url, id)).phase !== phase) {
    if (Date.now() > end) throw new Error(`image ${id} never reached ${phase}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
