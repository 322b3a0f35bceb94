import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { createInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import type { InspectionEvent } from 'xstate';

/**
 * The Stately inspector relay (`imagefactoryd --inspect`): every build
 * actor's inspection events, converted by `@statelyai/inspect`, go out over a
 * WebSocket on the loopback interface, in the protocol of
 * `@statelyai/inspect/server` — so Stately's tools attach as they would to
 * their own relay: `createWebSocketReceiver({ server })` in a script, or the
 * bridge page served at the relay's HTTP address in a browser that can reach
 * stately.ai. The daemon itself never opens a browser and never connects out.
 */

/** Where Stately's tools look by default (`createWebSocketReceiver`, `createInspectorServer`). */
export const DEFAULT_INSPECT_PORT = 8080;

/** Where Stately's hosted inspector lives; only the bridge page, opened by a person, loads it. */
const STATELY_INSPECTOR_URL = 'https://stately.ai/inspect';

/** Actors remembered for late attachers; beyond it the oldest are forgotten. */
const MAX_LIVE_ACTORS = 1000;
/** Builds whose converters are kept at hand. */
const MAX_INSPECTED_BUILDS = 256;
/** A client that falls this far behind is dropped rather than buffered without end. */
const MAX_CLIENT_BACKLOG = 4 * 1024 * 1024;

export interface InspectRelayOptions {
  /** 0 picks a free port. */
  port: number;
  /** Loopback by default: the events carry build contexts. */
  host?: string;
  log?: (line: string) => void;
}

export interface InspectRelay {
  /** `ws://127.0.0.1:PORT`: what `createWebSocketReceiver({ server })` takes. */
  readonly url: string;
  /** `http://127.0.0.1:PORT`: the bridge page to Stately's visual inspector. */
  readonly httpUrl: string;
  readonly port: number;
  /** The observer of every build actor's events (`createActor(…, { inspect })`), told which build it is. */
  readonly inspect: (event: InspectionEvent, imageId: string) => void;
  close(): Promise<void>;
}

// `ws` is @statelyai/inspect's own WebSocket dependency (its server and its
// Node client use it); it is loaded from beside that package, and typed here
// by the little the relay uses.
interface WsClient {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string): void;
  terminate(): void;
  on(event: 'error' | 'message', listener: (...args: unknown[]) => void): void;
}
interface WsServer {
  readonly clients: Set<WsClient>;
  on(event: 'connection', listener: (client: WsClient, req: IncomingMessage) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  close(callback?: () => void): void;
}
interface WsModule {
  WebSocketServer: new (options: {
    server: Server;
    maxPayload?: number;
    verifyClient?: (info: { origin: string | undefined; req: IncomingMessage; secure: boolean }) => boolean;
  }) => WsServer;
}
const OPEN = 1;

function loadWs(): WsModule {
  const inspectEntry = createRequire(import.meta.url).resolve('@statelyai/inspect');
  return createRequire(inspectEntry)('ws') as WsModule;
}

/** JSON that survives what inspection events may hold: cycles, errors, bigints, functions. */
function toJson(value: unknown): string | null {
  const seen = new WeakSet<object>();
  try {
    return JSON.stringify(value, (_key, v: unknown) => {
      if (typeof v === 'bigint') return v.toString();
      if (typeof v === 'function') return { type: (v as { name?: string }).name || 'function' };
      if (v instanceof Error) return { name: v.name, message: v.message, ...(v as unknown as Record<string, unknown>) };
      if (typeof v === 'object' && v !== null) {
        if (seen.has(v)) return '[Circular]';
        seen.add(v);
      }
      return v;
    });
  } catch {
    return null;
  }
}

/** The page `@statelyai/inspect/server` serves: Stately's inspector in a frame, fed from this relay. */
function bridgePage(): string {
  return `<!DOCTYPE html>
<html>
<head>
  <meta charset="utf-8">
  <title>imagefactory: Stately inspector</title>
  <style>* { margin: 0; padding: 0; } html, body { height: 100%; } iframe { width: 100%; height: 100%; border: none; }</style>
</head>
<body>
  <iframe id="inspector" src="${STATELY_INSPECTOR_URL}"></iframe>
  <script>
    const iframe = document.getElementById('inspector');
    const buffer = [];
    let connected = false;
    window.addEventListener('message', (e) => {
      if (e.data && e.data.type === '@statelyai.connected') {
        connected = true;
        buffer.forEach((event) => iframe.contentWindow.postMessage(event, '*'));
        buffer.length = 0;
      }
    });
    const ws = new WebSocket('ws://' + location.host);
    ws.onmessage = (event) => {
      const data = JSON.parse(event.data);
      if (connected) iframe.contentWindow.postMessage(data, '*');
      else buffer.push(data);
    };
  </script>
</body>
</html>`;
}

function answerHttp(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0];
  if ((req.method === 'GET' || req.method === 'HEAD') && path === '/') {
    const body = bridgePage();
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
  res.end('This is the imagefactory inspector relay: connect a WebSocket to it, or open / in a browser.\n');
}

/**
 * Browsers may connect only from the relay's own origin (its bridge page):
 * any other web page the user visits could otherwise read the builds. Node
 * clients send no Origin and are let in.
 */
function originAllowed(origin: string | undefined, port: () => number): boolean {
  if (origin === undefined || origin === '') return true;
  try {
    const url = new URL(origin);
    return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) && Number(url.port) === port();
  } catch {
    return false;
  }
}

/** Starts the relay; rejects (e.g. port in use) before anything is relayed. */
export async function startInspectRelay(opts: InspectRelayOptions): Promise<InspectRelay> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? (() => undefined);
  const { WebSocketServer } = loadWs();
  const server = createServer(answerHttp);
  let port = opts.port;
  const wss = new WebSocketServer({ server, maxPayload: 64 * 1024, verifyClient: ({ origin }) => originAllowed(origin, () => port) });

  // What a late attacher needs to draw what is running now: each live actor's registration and latest snapshot.
  const live = new Map<string, { actor: string; snapshot: string | null }>();

  const send = (client: WsClient, text: string) => {
    if (client.readyState !== OPEN) return;
    if (client.bufferedAmount > MAX_CLIENT_BACKLOG) {
      log('inspect: a relay client fell too far behind and was dropped');
      client.terminate();
      return;
    }
    client.send(text);
  };

  const remember = (event: StatelyInspectionEvent, text: string) => {
    if (event.type === '@xstate.actor') {
      live.set(event.sessionId, { actor: text, snapshot: null });
      if (live.size > MAX_LIVE_ACTORS) live.delete(live.keys().next().value!);
    } else if (event.type === '@xstate.snapshot') {
      const known = live.get(event.sessionId);
      if (!known) return;
      const status = (event.snapshot as { status?: string } | undefined)?.status;
      if (status === 'active' || status === undefined) known.snapshot = text;
      else live.delete(event.sessionId);
    }
  };

  const relay = (event: StatelyInspectionEvent) => {
    const text = toJson(event);
    if (text === null) return;
    remember(event, text);
    for (const client of wss.clients) send(client, text);
  };

  // XState's session ids (`x:12`) say nothing of the build and start again at `x:0` in a
  // restarted daemon: they go out prefixed with the build's image id, so that Stately's tools,
  // which key actors by session id, keep builds apart and a person can tell which is which.
  // A Stately inspector holds no state of its own, so forgetting old builds' ones costs nothing.
  const inspectors = new Map<string, ReturnType<typeof createInspector>>();
  const inspectorFor = (imageId: string) => {
    let inspector = inspectors.get(imageId);
    if (!inspector) {
      const scoped = (id: string | undefined) => (id === undefined || id === 'anonymous' ? id : `${imageId}/${id}`);
      inspector = createInspector({
        send(event: StatelyInspectionEvent) {
          const e = event as StatelyInspectionEvent & { parentId?: string; sourceId?: string };
          relay({
            ...e,
            sessionId: scoped(e.sessionId)!,
            rootId: scoped(e.rootId),
            ...(e.parentId !== undefined ? { parentId: scoped(e.parentId) } : {}),
            ...(e.sourceId !== undefined ? { sourceId: scoped(e.sourceId) } : {}),
          } as StatelyInspectionEvent);
        },
      });
      inspectors.set(imageId, inspector);
      if (inspectors.size > MAX_INSPECTED_BUILDS) inspectors.delete(inspectors.keys().next().value!);
    }
    return inspector;
  };

  wss.on('connection', (client) => {
    client.on('error', () => undefined);
    // A read-only relay: what clients send is not passed on.
    client.on('message', () => undefined);
    for (const { actor, snapshot } of live.values()) {
      send(client, actor);
      if (snapshot) send(client, snapshot);
    }
  });
  wss.on('error', (e) => log(`inspect: ${e.message}`));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((e: NodeJS.ErrnoException) => {
    wss.close();
    throw new Error(`the inspector relay cannot listen on ${host}:${opts.port}: ${e.code === 'EADDRINUSE' ? 'the port is in use' : e.message}`);
  });
  server.on('error', (e) => log(`inspect: ${e.message}`));
  port = (server.address() as AddressInfo).port;
  const hostInUrl = host.includes(':') ? `[${host}]` : host;

  return {
    url: `ws://${hostInUrl}:${port}`,
    httpUrl: `http://${hostInUrl}:${port}`,
    port,
    inspect: (event, imageId) => inspectorFor(imageId).inspect.next?.(event),
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
