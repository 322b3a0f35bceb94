import type { ServerResponse } from 'node:http';
import type { Request } from 'polka';
import type { EngineApi } from '../engine/types.js';
import type { MetricsSource } from './metrics.js';

/** What a successful answer of a route is; checked against `Accept` before the handler runs. */
export type MediaType = 'application/json' | 'application/octet-stream' | 'text/plain' | 'text/event-stream';

export interface RouteContext {
  readonly engine: EngineApi;
  readonly log: (line: string) => void;
  readonly maxBodyBytes: number;
  /** Interval of the SSE heartbeat comment. */
  readonly heartbeatMs: number;
  /** Open long-lived responses (event streams, followed logs), ended when the server closes. */
  readonly streams: Set<ServerResponse>;
  /** Bounds of `streams`, in all and per client address; STREAM_LIMITS (streams.ts) when not given. */
  readonly maxStreams?: number;
  readonly maxStreamsPerClient?: number;
  /** What `GET /metrics` serves, when the daemon collects metrics. */
  readonly metrics?: MetricsSource;
}

export type Handler = (req: Request, res: ServerResponse, ctx: RouteContext) => void | Promise<void>;

export interface RouteDef {
  method: 'GET' | 'POST' | 'DELETE';
  /** Polka pattern: `/imagefactory/base_images/:base_image_id`. */
  path: string;
  produces: MediaType;
  handle: Handler;
}

/** One query parameter (the first when repeated); polka's parser gives arrays for repeats. */
export function queryParam(req: Request, name: string): string | undefined {
  const v = (req.query as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? v[0] : v;
}

/** All query parameters, first value of each. */
export function queryParams(req: Request): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const name of Object.keys(req.query ?? {})) out[name] = queryParam(req, name);
  return out;
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);

export function queryFlag(req: Request, name: string): boolean {
  const v = queryParam(req, name);
  return v !== undefined && (v === '' || TRUE.has(v.toLowerCase()));
}
