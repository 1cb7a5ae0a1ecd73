/**
 * The worker's HTTP endpoint for Prometheus (`/metrics`), liveness (`/healthz`: the process
 * works; an outage elsewhere does not make it fail) and readiness (`/readyz`: it can take frames
 * now — Redis and the object store reachable, not stopping).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FarmMetrics } from '@celfarm/metrics';

export interface MetricsServerOptions {
  registry: FarmMetrics['registry'];
  /** 0: any free port (read it back with {@link metricsUrl}). */
  port: number;
  /** Address to bind. Default 127.0.0.1: the metrics carry project names and need no auth. */
  host?: string;
  /** Body of /healthz; 503 while `ok` is false (e.g. shutting down). */
  health: () => { ok: boolean } & Record<string, unknown>;
  /** Body of /readyz; 503 while `ok` is false. Default: the same as /healthz. */
  ready?: () => { ok: boolean } & Record<string, unknown>;
}

async function handle(opts: MetricsServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET') {
    res.writeHead(405).end();
  } else if (path === '/metrics') {
    const body = await opts.registry.metrics();
    res.writeHead(200, { 'content-type': opts.registry.contentType }).end(body);
  } else if (path === '/healthz' || path === '/readyz') {
    const health = path === '/readyz' && opts.ready ? opts.ready() : opts.health();
    res.writeHead(health.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(health));
  } else {
    res.writeHead(404).end();
  }
}

/** Listens on `host:port`; resolves with the server once it accepts connections. */
export function startMetricsServer(opts: MetricsServerOptions): Promise<Server> {
  const server = createServer((req, res) => {
    handle(opts, req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(e));
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** `http://host:port/metrics` of a listening server: the address and port it really bound. */
export function metricsUrl(server: Server): string {
  const { address, family, port } = server.address() as AddressInfo;
  return `http://${family === 'IPv6' ? `[${address}]` : address}:${port}/metrics`;
}
