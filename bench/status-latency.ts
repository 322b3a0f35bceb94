import { join } from 'node:path';
import { PROJECT_ROOT } from '../src/version.js';
import { daemonHome, startDaemon } from './daemon-process.js';
import { measureGet, type LatencyFigures } from './load.js';

const BENCH_PLUGINS = join(PROJECT_ROOT, 'bench', 'plugins');
const BUILDS = 4;
const BODY = '1GiB';

function template(name: string, size: string): string {
  return `<template><name>${name}</name><os><name>BenchOS</name><version>1</version><arch>x86_64</arch><install type="url"><url>http://mirror.example.com/</url></install></os><disk><size>${size}</size></disk></template>`;
}

async function post(url: string, tdl: string): Promise<string> {
  const res = await fetch(`${url}/imagefactory/base_images`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ base_image: { template: tdl } }) });
  if (res.status !== 202) throw new Error(`POST answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { base_image: { id: string } }).base_image.id;
}

async function image(url: string, id: string): Promise<{ status: string; phase: string }> {
  return ((await (await fetch(`${url}/imagefactory/base_images/${id}`)).json()) as { base_image: { status: string; phase: string } }).base_image;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 300_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Status GET latency of a running daemon, idle and while 4 builds hash
 * 1 GiB bodies in the worker pool, measured in the same run. The claim under
 * test: CPU-heavy work stays off the event loop.
 */
export async function statusLatency(): Promise<{ rows: [string, LatencyFigures][]; ratio: number }> {
  const home = daemonHome(BENCH_PLUGINS, { max_concurrent_local_sessions: BUILDS });
  const daemon = await startDaemon(home.config);
  try {
    const probe = await post(daemon.url, template('probe', '1MiB'));
    await until(async () => (await image(daemon.url, probe)).status === 'COMPLETE', 'the probe build');
    const statusUrl = `${daemon.url}/imagefactory/base_images/${probe}`;

    await measureGet(statusUrl, { connections: 4, seconds: 1 }); // warm-up
    const idle = await measureGet(statusUrl, { connections: 4, seconds: 4 });

    const ids = await Promise.all(Array.from({ length: BUILDS }, (_, i) => post(daemon.url, template(`hash-${i}`, BODY))));
    await until(async () => (await image(daemon.url, ids[0]!)).phase === 'snapshotting', 'hashing to start');
    const loaded = await measureGet(statusUrl, { connections: 4, seconds: 4 });
    const stillHashing = (await Promise.all(ids.map((id) => image(daemon.url, id)))).filter((i) => i.phase === 'snapshotting').length;
    await until(async () => (await Promise.all(ids.map((id) => image(daemon.url, id)))).every((i) => i.status === 'COMPLETE'), 'the builds to complete');
    if (stillHashing === 0) process.stderr.write('warning: hashing ended before the loaded measurement did\n');
    return {
      rows: [
        ['idle', idle],
        [`${BUILDS} builds hashing ${BODY} each`, loaded],
      ],
      ratio: loaded.p99 / idle.p99,
    };
  } finally {
    await daemon.stop();
    home.remove();
  }
}
