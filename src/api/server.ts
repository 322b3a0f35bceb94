import http from 'node:http';
import type { AddressInfo } from 'node:net';
import polka, { type IError, type Polka, type Request } from 'polka';
import type { EngineApi } from '../engine/types.js';
import { DEFAULT_MAX_BODY_BYTES } from './body.js';
import { ApiError, answerFor, notFound } from './errors.js';
import { requireAcceptable } from './negotiate.js';
import { sendJson } from './respond.js';
import type { RouteContext, RouteDef } from './route.js';
import { allRoutes } from './routes/index.js';

export interface ApiServerOptions {
  /** Largest request body accepted (413 beyond); 1 MiB by default. */
  maxBodyBytes?: number;
  /** Where access lines and faults go (one line each; never a query string, never a credential). */
  log?: (line: string) => void;
  /** Interval of the SSE heartbeat comment; 15 s by default. */
  heartbeatMs?: number;
  /** A server to answer on (e.g. an https.Server); a new plain http.Server otherwise. */
  server?: http.Server;
}

export interface ApiServer {
  readonly app: Polka;
  readonly server: http.Server;
  /** What was registered with the router, for documentation checks. */
  readonly routes: readonly Pick<RouteDef, 'method' | 'path' | 'produces'>[];
  /** Binds and resolves with the bound port (useful with port 0). */
  listen(port: number, address?: string): Promise<number>;
  /** Stops listening and closes every connection, open event streams included. */
  close(): Promise<void>;
}

const METHODS = ['GET', 'POST', 'DELETE'] as const;
const CLOSE_GRACE_MS = 200;

export function createApiServer(engine: EngineApi, opts: ApiServerOptions = {}): ApiServer {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const ctx: RouteContext = {
    engine,
    log,
    maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    heartbeatMs: opts.heartbeatMs ?? 15_000,
    streams: new Set(),
  };
  const server = opts.server ?? http.createServer();

  const app: Polka = polka({
    server,
    onError: (err, req, res) => answerError(err, req, res, log),
    onNoMatch: (req) => {
      const allowed = METHODS.filter((m) => app.find(m, req.path).handlers.length > 0);
      if (allowed.length === 0) throw notFound(req.path);
      const allow = [...allowed, ...(allowed.includes('GET') ? ['HEAD'] : [])].join(', ');
      throw new ApiError(405, 'method_not_allowed', `${req.method} is not allowed on ${req.path}; use ${allow}`, { allow }, { allow });
    },
  });

  const routes = allRoutes();
  for (const def of routes) {
    app.add(def.method, def.path, async (req, res) => {
      try {
        requireAcceptable(req, def.produces);
        await def.handle(req, res, ctx);
      } catch (e) {
        // Polka takes a falsy error for "no error" and would go on to the next handler.
        throw e || new Error(`a handler threw ${String(e)}`);
      }
    });
  }

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const started = process.hrtime.bigint();
    res.on('close', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      // The path only: query strings may carry credentials (provider image DELETE).
      const path = (req.url ?? '').split('?')[0];
      log(`${req.method} ${path} ${res.statusCode}${res.writableFinished ? '' : ' (aborted)'} ${ms.toFixed(1)}ms`);
    });
    void app.handler(req as Request, res, undefined as never);
  });

  return {
    app,
    server,
    routes: routes.map(({ method, path, produces }) => ({ method, path, produces })),
    listen: (port, address) =>
      new Promise<number>((resolve, reject) => {
        const onError = (e: Error) => reject(e);
        server.once('error', onError);
        server.listen(port, address, () => {
          server.off('error', onError);
          resolve((server.address() as AddressInfo).port);
        });
      }),
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (!server.listening) return resolve();
        server.close((e) => (e ? reject(e) : resolve()));
        // Streams end cleanly (their clients see a finished response), idle keep-alive
        // connections go at once, and whatever is still busy after a grace period is cut.
        for (const res of ctx.streams) res.end();
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS).unref();
      }),
  };
}

/** Every failure becomes `{"error":{code,message,details}}`; a genuine fault gets a correlation id in the body and the log. */
function answerError(err: string | IError, req: Request, res: http.ServerResponse, log: (line: string) => void): void {
  try {
    const answer = answerFor(typeof err === 'string' ? new Error(err) : err);
    if (answer.correlationId) {
      const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
      log(`internal error ${answer.correlationId} on ${req.method} ${req.path}: ${detail}`);
    }
    if (res.headersSent) {
      // Too late for an error document: cut the response so the client sees it incomplete.
      res.destroy();
      return;
    }
    sendJson(res, answer.status, answer.body, answer.headers);
  } catch (e) {
    log(`could not answer an error on ${req.method} ${req.path}: ${(e as Error).message}`);
    res.destroy();
  }
}
