import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MetricsSource } from '../api/metrics.js';
import { METRICS_PATH } from '../api/routes/metrics.js';

/**
 * `GET /metrics` on a port of its own, bound to 127.0.0.1 only and without
 * OAuth (`metrics_port`), for a Prometheus on the same host that cannot sign
 * requests. Nothing else is served there.
 */
export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(metrics: MetricsSource, port: number): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== METRICS_PATH || (req.method !== 'GET' && req.method !== 'HEAD')) {
      const body = JSON.stringify({ error: { code: 'not_found', message: `only GET ${METRICS_PATH} is served on this port` } });
      res.writeHead(404, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
      return;
    }
    metrics.text().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.contentType, 'content-length': String(Buffer.byteLength(text)), 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      () => {
        res.writeHead(500);
        res.end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}${METRICS_PATH}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
