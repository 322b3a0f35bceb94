import http from 'node:http';
import { createApiServer, type ApiServerOptions, type ApiServer } from '../../src/api/server.js';
import { FakeEngine } from './fake-engine.js';

export const TEMPLATE = `<template>
  <name>deb12</name>
  <os>
    <name>Debian</name>
    <version>12</version>
    <arch>x86_64</arch>
    <rootpw>s3cr3t-pw</rootpw>
    <install type="url"><url>http://deb.debian.org/debian</url></install>
  </os>
  <description>test</description>
</template>`;

export const CREDENTIALS = '<provider_credentials><ec2_credentials><account_number>1234</account_number><access_key>AKIA-SECRET</access_key><secret_access_key>VERY-SECRET</secret_access_key></ec2_credentials></provider_credentials>';

export interface Harness {
  engine: FakeEngine;
  api: ApiServer;
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** `origin + /imagefactory` */
  base: string;
  logs: string[];
  stop(): Promise<void>;
}

/** A real server on 127.0.0.1, port 0, over a fake engine. */
export async function start(opts: Omit<ApiServerOptions, 'log'> = {}): Promise<Harness> {
  const engine = new FakeEngine();
  const logs: string[] = [];
  const api = createApiServer(engine, { ...opts, log: (line) => logs.push(line) });
  const port = await api.listen(0, '127.0.0.1');
  const origin = `http://127.0.0.1:${port}`;
  return {
    engine,
    api,
    origin,
    base: `${origin}/imagefactory`,
    logs,
    stop: async () => {
      await api.close();
      engine.cleanup();
    },
  };
}

export async function getJson(url: string, init: RequestInit = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

export function postJson(url: string, body: unknown, init: RequestInit = {}) {
  return getJson(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...init });
}

export function postForm(url: string, fields: Record<string, string>) {
  return getJson(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
}

export interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
}

/** An open streaming GET: collects the text and parses SSE events as they arrive. */
export class Stream {
  text = '';
  comments: string[] = [];
  events: SseEvent[] = [];
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  ended = false;
  private req: http.ClientRequest;
  private waiters: (() => void)[] = [];
  private pending = '';
  error: Error | null = null;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.req = http.get(url, { headers }, (res) => {
      this.status = res.statusCode!;
      this.headers = res.headers;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        this.text += chunk;
        this.parse(chunk);
        this.wake();
      });
      res.on('end', () => {
        this.ended = true;
        this.wake();
      });
      // A connection cut before the end counts as ended too (with the error kept).
      res.on('error', (e) => (this.error = e));
      res.on('close', () => {
        this.ended = true;
        this.wake();
      });
    });
    this.req.on('error', (e) => {
      this.error = e;
      this.ended = true;
      this.wake();
    });
  }

  private parse(chunk: string): void {
    this.pending += chunk;
    let at: number;
    while ((at = this.pending.indexOf('\n\n')) !== -1) {
      const block = this.pending.slice(0, at);
      this.pending = this.pending.slice(at + 2);
      const event: SseEvent = {};
      let isEvent = false;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
        else {
          const i = line.indexOf(':');
          const field = line.slice(0, i);
          const value = line.slice(i + 1).replace(/^ /, '');
          if (field === 'id' || field === 'event' || field === 'data') {
            event[field] = value;
            isEvent = true;
          }
        }
      }
      if (isEvent) this.events.push(event);
    }
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when `check` holds; rejects after `ms`. */
  async until(check: () => boolean, ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out; text so far: ${JSON.stringify(this.text.slice(-500))}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 20);
      });
    }
  }

  close(): void {
    this.req.destroy();
  }
}

export const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));
