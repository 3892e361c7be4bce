// Plain-HTTP operations port: /live, /ready, Prometheus /metrics and the status page (/status,
// /status.json). Never carries allocations.
import http from 'node:http';
import type { Registry } from 'prom-client';
import type { StatusSnapshot } from '../observability/status-board.ts';
import { renderStatusPage } from './status-page.ts';

export interface OpsServerOptions {
  readonly host: string;
  readonly port: number;
  readonly registry: Registry;
  /** Ready = cache synced and not draining. */
  readonly ready: () => boolean;
  /** What the status page shows; absent = no status page. */
  readonly status?: () => Promise<StatusSnapshot>;
}

// The page needs no script, style or frame from anywhere: forbid all, allow its inline style.
const STATUS_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
};

export class OpsServer {
  readonly #server: http.Server;

  constructor(opts: OpsServerOptions) {
    this.#server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET' }).end();
      } else if (path === '/live') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (path === '/ready') {
        const ok = opts.ready();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not ready\n');
      } else if (path === '/metrics') {
        opts.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text),
          () => res.writeHead(500).end(),
        );
      } else if ((path === '/status' || path === '/status.json' || path === '/') && opts.status) {
        if (path === '/') {
          res.writeHead(302, { location: '/status' }).end();
          return;
        }
        opts.status().then(
          (snapshot) =>
            path === '/status'
              ? res.writeHead(200, { ...STATUS_HEADERS, 'content-type': 'text/html; charset=utf-8' }).end(renderStatusPage(snapshot))
              : res.writeHead(200, { ...STATUS_HEADERS, 'content-type': 'application/json' }).end(JSON.stringify(snapshot)),
          () => res.writeHead(500, { 'content-type': 'text/plain' }).end('status unavailable\n'),
        );
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      }
    });
    this.#server.headersTimeout = 5_000;
    this.#opts = opts;
  }

  readonly #opts: OpsServerOptions;

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#opts.port, this.#opts.host, () => resolve());
    });
    const addr = this.#server.address();
    return typeof addr === 'object' && addr ? addr.port : 0;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
