import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { daemonHome as home } from '../../bench/daemon-process.js';

export { startDaemon, type Daemon } from '../../bench/daemon-process.js';
export const TEST_PLUGINS = fileURLToPath(new URL('../fixtures/plugins/', import.meta.url));

/** A scratch area whose configuration points storage, imgdir, tmpdir and plugins (the test plugins) into it. */
export const daemonHome = (extra: Record<string, unknown> = {}, opts: { storagePathLength?: number } = {}) => home(TEST_PLUGINS, extra, opts);

export function template(version: string, os = 'TestOS'): string {
  return `<template>\n  <name>t-${version}</name>\n  <os><name>${os}</name><version>${version}</version><arch>x86_64</arch><install type="url"><url>http://mirror.example.com/</url></install><rootpw>s3cret-pw</rootpw></os>\n</template>`;
}

/** POSTs a base image; `headers` adds to the request's (e.g. `prefer: handling=strict`). */
export async function postBase(url: string, tdl: string, parameters: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/imagefactory/base_images`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ base_image: { template: tdl, parameters } }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

export async function getImage(url: string, id: string) {
  const res = await fetch(`${url}/imagefactory/base_images/${id}`);
  return (await res.json()).base_image as Record<string, any>;
}

/** The header with which a client asks for an invalid template to be refused at once (400) rather than FAILED. */
export const STRICT = { prefer: 'handling=strict' };

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

/** Collects Server-Sent Events until `until` says stop. */
export function readEvents(url: string, until: (events: { event: string; data: any }[]) => boolean): Promise<{ event: string; data: any }[]> {
  return new Promise((resolve, reject) => {
    const events: { event: string; data: any }[] = [];
    const req = http.get(url, { headers: { accept: 'text/event-stream' } }, (res) => {
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
          if (until(events)) {
            req.destroy();
            resolve(events);
          }
        }
      });
    });
    req.on('error', (e) => (e.message.includes('aborted') || (e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
  });
}
