import { createRequire } from 'node:module';
import { createWebSocketReceiver, type StatelyInspectionEvent } from '@statelyai/inspect';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDaemonArgs } from '../../src/config/index.js';
import { checkValue } from '../../src/config/validate.js';
import { daemonHome, postBase, sleep, startDaemon, template, TEST_PLUGINS, waitPhase, waitStatus, type Daemon } from './helpers.js';

// Node 20 has no WebSocket; @statelyai/inspect ships `ws` (its Node client and server use it).
interface WsClient {
  on(event: 'open' | 'close', listener: () => void): void;
  on(event: 'message', listener: (data: unknown) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  on(event: 'unexpected-response', listener: (req: unknown, res: { statusCode: number }) => void): void;
  close(): void;
  terminate(): void;
}
const { WebSocket } = createRequire(createRequire(import.meta.url).resolve('@statelyai/inspect'))('ws') as {
  WebSocket: new (url: string, options?: { headers?: Record<string, string> }) => WsClient;
};

/** What the relay sends, as far as the tests read it (`StatelyInspectionEvent` on the wire). */
interface Event {
  type: StatelyInspectionEvent['type'];
  sessionId: string;
  rootId?: string;
  parentId?: string;
  name?: string;
  definition?: string;
  event?: { type: string };
  snapshot?: { value?: unknown; status?: string; context?: { imageId?: string } };
}

let home: ReturnType<typeof daemonHome> | undefined;
const daemons: Daemon[] = [];
const sockets: WsClient[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  for (const d of daemons.splice(0)) await d.stop();
  home?.remove();
  home = undefined;
});

async function startInspecting(...flags: string[]): Promise<{ daemon: Daemon; relay: string }> {
  home = daemonHome(TEST_PLUGINS);
  const daemon = await startDaemon(home.config, ...flags);
  daemons.push(daemon);
  // The relay's address is logged (stderr) before the daemon listens.
  for (let i = 0; i < 100; i++) {
    const m = /relayed to Stately's inspector at (ws:\/\/\S+)/.exec(daemon.output());
    if (m) return { daemon, relay: m[1]! };
    await sleep(20);
  }
  throw new Error(`no relay address in the output:\n${daemon.output()}`);
}

/** A WebSocket client that keeps every message; resolves once open. */
async function attach(url: string, headers?: Record<string, string>): Promise<{ events: Event[]; socket: WsClient }> {
  const socket = new WebSocket(url, headers ? { headers } : {});
  sockets.push(socket);
  const events: Event[] = [];
  socket.on('message', (data) => events.push(JSON.parse(String(data)) as Event));
  await new Promise<void>((resolve, reject) => {
    socket.on('open', resolve);
    socket.on('error', reject);
  });
  return { events, socket };
}

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const rootOf = (events: Event[], imageId: string) =>
  events.find((e) => e.type === '@xstate.actor' && e.parentId === undefined && e.snapshot?.context?.imageId === imageId);

describe('imagefactoryd --inspect: the Stately inspector relay', () => {
  it('relays every build actor’s @xstate.actor, @xstate.event and @xstate.snapshot events, while the engine still records every transition', async () => {
    const { daemon, relay } = await startInspecting('--inspect=0');
    expect(relay).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    const raw = await attach(relay);
    // Stately's own client attaches the same way.
    const stately: Event[] = [];
    createWebSocketReceiver({ server: relay }).subscribe((e) => void stately.push(e as unknown as Event));
    await sleep(200);

    const { body } = await postBase(daemon.url, template('ok'));
    const id = body.base_image.id as string;
    await waitStatus(daemon.url, id, ['COMPLETE']);
    const events = raw.events;

    const root = await until('the build actor', () => rootOf(events, id));
    expect(root.name).toBe('build');
    expect(root.sessionId.startsWith(`${id}/`)).toBe(true);
    expect(JSON.parse(root.definition!)).toMatchObject({ id: 'build' });
    const rootSnapshots = () => events.filter((e) => e.type === '@xstate.snapshot' && e.sessionId === root.sessionId);
    await until('the final snapshot', () => rootSnapshots().some((e) => e.snapshot?.status === 'done'));

    // Every state of the build, in order, as snapshots of the build actor.
    expect(rootSnapshots().map((e) => e.snapshot!.value)).toEqual(['queued', 'validating', 'preparing', 'installing', 'customizing', 'snapshotting', 'complete']);
    expect(rootSnapshots().at(-1)!.snapshot!.status).toBe('done');
    // The events it received: ADMIT from the engine, the steps' completions.
    const received = events.filter((e) => e.type === '@xstate.event' && e.sessionId === root.sessionId).map((e) => e.event!.type);
    expect(received).toEqual(expect.arrayContaining(['xstate.init', 'ADMIT', 'xstate.done.actor.step']));
    // Its children (one step actor per working state, timers) are there too, under it.
    const children = events.filter((e) => e.type === '@xstate.actor' && e.parentId === root.sessionId);
    expect(children.filter((c) => c.name === 'step')).toHaveLength(5);
    expect(children.some((c) => c.name === 'timer')).toBe(true);

    // Stately's receiver saw the same build end.
    await until('the receiver to see the end', () =>
      stately.some((e) => e.type === '@xstate.snapshot' && e.sessionId === root.sessionId && e.snapshot?.value === 'complete'),
    );

    // Both observers got every event: the engine's own record is whole.
    const transitions = (await (await fetch(`${daemon.url}/imagefactory/base_images/${id}/transitions`)).json()) as { to: string }[];
    expect(transitions.map((t) => t.to)).toEqual(['queued', 'validating', 'preparing', 'installing', 'customizing', 'snapshotting', 'complete']);
  });

  it('keeps builds apart, replays running builds to a late attacher, and serves Stately’s bridge page', async () => {
    const { daemon, relay } = await startInspecting('--inspect=0');
    const first = await postBase(daemon.url, template('ok'));
    await waitStatus(daemon.url, first.body.base_image.id, ['COMPLETE']);
    const slow = await postBase(daemon.url, template('slow'));
    const id = slow.body.base_image.id as string;
    await waitPhase(daemon.url, id, 'installing');

    // Attached in the middle of the build: it is told what runs now, not what ended before.
    const late = await attach(relay);
    const root = await until('the replayed build actor', () => rootOf(late.events, id));
    await until('the replayed snapshot', () => late.events.some((e) => e.type === '@xstate.snapshot' && e.sessionId === root.sessionId && e.snapshot?.value === 'installing'));
    expect(rootOf(late.events, first.body.base_image.id)).toBeUndefined();
    // Each build's actors carry its image id.
    expect(root.sessionId).toMatch(new RegExp(`^${id}/x:\\d+$`));
    expect(late.events.filter((e) => e.sessionId.startsWith(`${id}/`)).length).toBe(late.events.length);
    await waitStatus(daemon.url, id, ['COMPLETE']);
    await until('the end of the slow build', () => late.events.some((e) => e.sessionId === root.sessionId && e.snapshot?.value === 'complete'));

    // The bridge page, as @statelyai/inspect/server serves it: Stately's inspector fed from this relay.
    const httpUrl = relay.replace(/^ws:/, 'http:');
    const page = await fetch(`${httpUrl}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toContain("new WebSocket('ws://' + location.host)");

    // Browsers only from the bridge page's origin: another site cannot read the builds.
    const foreign = new WebSocket(relay, { headers: { origin: 'https://evil.example' } });
    sockets.push(foreign);
    const refused = await new Promise<number>((resolve) => {
      foreign.on('unexpected-response', (_req, res) => resolve(res.statusCode));
      foreign.on('error', () => resolve(-1));
      foreign.on('open', () => resolve(101));
    });
    expect(refused).toBe(401);
    await attach(relay, { origin: httpUrl });
  });

  it('refuses to start when the relay’s port is taken, and is off by default', async () => {
    const { relay } = await startInspecting('--inspect=0');
    const port = new URL(relay).port;
    const second = startDaemon(home!.config, `--inspect=${port}`);
    await expect(second).rejects.toThrow(/exited with 2[\s\S]*inspector relay cannot listen on 127\.0\.0\.1:\d+: the port is in use/);

    // Another storage: one daemon per storage path.
    const other = daemonHome(TEST_PLUGINS);
    const plain = await startDaemon(other.config).catch((e) => {
      other.remove();
      throw e;
    });
    daemons.push({
      ...plain,
      stop: async () => {
        const exit = await plain.stop();
        other.remove();
        return exit;
      },
    });
    await sleep(200);
    expect(plain.output()).not.toMatch(/inspect/);
  });

  it('takes --inspect alone, with a port, or a config value, and refuses anything else', () => {
    const flags = (...argv: string[]) => {
      const parsed = parseDaemonArgs(argv);
      if (parsed.kind !== 'run') throw new Error(parsed.kind);
      return parsed.flags;
    };
    expect(flags('--inspect')).toEqual({ inspect: true });
    expect(flags('--inspect', '--port', '9')).toEqual({ inspect: true, port: 9 });
    expect(flags('--inspect=9229')).toEqual({ inspect: 9229 });
    expect(flags('--inspect', '9229')).toEqual({ inspect: 9229 });
    expect(flags('--inspect=0')).toEqual({ inspect: 0 });
    expect(flags('--inspect=false')).toEqual({ inspect: false });
    expect(flags('--no-inspect')).toEqual({ inspect: false });
    expect(flags()).toEqual({});
    expect(() => flags('--inspect=lots')).toThrow(/option --inspect must be a boolean or a TCP port \(an integer from 0 to 65535\), got "lots"/);
    expect(() => flags('--inspect=70000')).toThrow(/must be a boolean or a TCP port/);

    expect(checkValue('inspect', true)).toEqual({ ok: true, value: true });
    expect(checkValue('inspect', 8081)).toEqual({ ok: true, value: 8081 });
    expect(checkValue('inspect', '8081').ok).toBe(false);
    expect(checkValue('inspect', 1.5).ok).toBe(false);
  });
});
