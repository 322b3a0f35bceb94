// An HTTP proxy in front of moto that injects the failures a real cloud shows: throttling answers,
// 500s, a connection dropped without an answer, and an answer slower than the client's request
// timeout. Requests are passed on byte for byte (the Host header too, so SigV4 signatures stay
// valid); a plan decides, per request, what happens to it.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type Fault = 'throttle' | 'server-error' | 'drop' | 'slow';

export interface ProxiedRequest {
  method: string;
  path: string;
  /** 1 for the first request the proxy sees. */
  n: number;
  /** The request's body (EC2's query API names its action there: `Action=CreateTags`). */
  body: Buffer;
}

export interface FaultProxy {
  url: string;
  /** Faults injected so far, by kind; `passed` counts requests forwarded untouched. */
  counts: Record<Fault | 'passed', number>;
  /** Request body bytes forwarded to the service, by path prefix (`/snapshots/…/blocks` for block PUTs). */
  forwardedBlockBytes: number;
  plan: (req: ProxiedRequest) => Fault | undefined;
  stop(): Promise<void>;
}

export async function startFaultProxy(target: string, options: { slowMs: number; plan?: FaultProxy['plan'] }): Promise<FaultProxy> {
  const upstream = new URL(target);
  let n = 0;
  const proxy: FaultProxy = {
    url: '',
    counts: { throttle: 0, 'server-error': 0, drop: 0, slow: 0, passed: 0 },
    forwardedBlockBytes: 0,
    plan: options.plan ?? (() => undefined),
    stop: async () => {},
  };
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const fault = proxy.plan({ method: req.method ?? 'GET', path: req.url ?? '/', n: ++n, body });
      if (fault) proxy.counts[fault]++;
      else proxy.counts.passed++;
      const ebs = (req.url ?? '').startsWith('/snapshots');
      switch (fault) {
        case 'throttle':
          return ebs ? answer(res, 429, 'ThrottlingException', 'Rate exceeded', true) : answer(res, 503, 'RequestLimitExceeded', 'Request limit exceeded.', false);
        case 'server-error':
          return answer(res, 500, ebs ? 'InternalServerException' : 'InternalError', 'We encountered an internal error.', ebs);
        case 'drop':
          req.socket.destroy();
          return;
        case 'slow': {
          const timer = setTimeout(() => {
            timers.delete(timer);
            forward(req, res, body);
          }, options.slowMs);
          timers.add(timer);
          return;
        }
        default:
          forward(req, res, body);
      }
    });
  });

  function forward(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    if (req.method === 'PUT' && /\/blocks\/\d+$/.test(req.url ?? '')) proxy.forwardedBlockBytes += body.length;
    const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answerStream) => {
      res.writeHead(answerStream.statusCode ?? 502, answerStream.headers);
      answerStream.pipe(res);
    });
    out.on('error', () => res.destroy());
    res.on('error', () => {});
    out.end(body);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('the fault proxy has no port');
  proxy.url = `http://127.0.0.1:${address.port}`;
  proxy.stop = () =>
    new Promise<void>((resolve) => {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}

function answer(res: ServerResponse, status: number, code: string, message: string, json: boolean): void {
  if (json) {
    res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': code });
    res.end(JSON.stringify({ message }));
  } else {
    res.writeHead(status, { 'content-type': 'text/xml' });
    res.end(`<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>`);
  }
}
