import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import polka, { type IError, type Polka, type Request } from 'polka';
import type { EngineApi } from '../engine/types.js';
import type { OAuthVerifier } from './auth/oauth.js';
import { DEFAULT_MAX_BODY_BYTES, hasUnreadBody } from './body.js';
import { ApiError, answerFor, notFound } from './errors.js';
import { admit, targetPath } from './gate.js';
import type { MetricsSource } from './metrics.js';
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
  /**
   * Structured log (pino's shape): access lines at debug and faults at error,
   * each with its request id. Without it, `log` gets text lines.
   */
  logger?: StructuredLogger;
  /** Two-legged OAuth on every route but the open ones; absent or null: no OAuth (`--no_oauth`), and the inspector page only on loopback. */
  oauth?: OAuthVerifier | null;
  /** What `GET /metrics` serves; without it the route answers 404. */
  metrics?: MetricsSource;
}

/** The part of a pino logger the API uses. */
export interface StructuredLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
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
  const logger = opts.logger;
  const log = opts.log ?? (logger ? (line: string) => logger.warn({}, line) : (line: string) => process.stderr.write(`${line}\n`));
  const ctx: RouteContext = {
    engine,
    log,
    maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    heartbeatMs: opts.heartbeatMs ?? 15_000,
    streams: new Set(),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  };
  const fault = (line: string, fields: object) => (logger ? logger.error(fields, line) : log(line));
  const server = opts.server ?? http.createServer();

  const app: Polka = polka({
    server,
    onError: (err, req, res) => answerError(err, req, res, fault),
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

  const gate = { oauth: opts.oauth ?? null, maxBodyBytes: ctx.maxBodyBytes };
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const started = process.hrtime.bigint();
    const requestId = randomUUID();
    requestIds.set(req, requestId);
    res.setHeader('x-request-id', requestId);
    let consumer: string | null = null;
    res.on('close', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      // The path only: query strings may carry credentials (provider image DELETE) and OAuth signatures.
      const path = targetPath(req);
      if (logger) {
        logger.debug({ reqId: requestId, method: req.method, path, status: res.statusCode, ms: Math.round(ms * 10) / 10, ...(consumer ? { consumer } : {}), ...(res.writableFinished ? {} : { aborted: true }) }, 'request');
      } else {
        log(`${req.method} ${path} ${res.statusCode}${res.writableFinished ? '' : ' (aborted)'} ${ms.toFixed(1)}ms`);
      }
    });
    admit(req, gate).then(
      (admitted) => {
        consumer = admitted.consumerKey;
        void app.handler(req as Request, res, undefined as never);
      },
      (e: unknown) => {
        // A refused request's body is not read: close the connection rather than drain it.
        if (e instanceof ApiError && hasUnreadBody(req)) res.setHeader('connection', 'close');
        answerError(e as IError, Object.assign(req, { path: targetPath(req) }) as Request, res, fault);
      },
    );
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

/** Request ids, for log lines written away from the request handler. */
const requestIds = new WeakMap<http.IncomingMessage, string>();

/** Every failure becomes `{"error":{code,message,details}}`; a genuine fault gets a correlation id in the body and the log. */
function answerError(err: string | IError, req: Request, res: http.ServerResponse, log: (line: string, fields: object) => void): void {
  try {
    const answer = answerFor(typeof err === 'string' ? new Error(err) : err);
    if (answer.correlationId) {
      const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
      log(`internal error ${answer.correlationId} on ${req.method} ${req.path}: ${detail}`, { reqId: requestIds.get(req), correlationId: answer.correlationId, method: req.method, path: req.path, err: detail });
    }
    if (res.headersSent) {
      // Too late for an error document: cut the response so the client sees it incomplete.
      res.destroy();
      return;
    }
    sendJson(res, answer.status, answer.body, answer.headers);
  } catch (e) {
    log(`could not answer an error on ${req.method} ${req.path}: ${(e as Error).message}`, { reqId: requestIds.get(req), method: req.method, path: req.path });
    res.destroy();
  }
}
