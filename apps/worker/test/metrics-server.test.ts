/**
 * The worker's metrics endpoint: loopback only unless told otherwise (its metrics name projects
 * and need no key), on the port asked for or, with port 0, one the OS picks and the URL reports.
 * Reachability is probed on 127.0.0.2, another loopback address: an endpoint bound to every
 * interface answers there, one bound to 127.0.0.1 does not.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { metricsUrl, startMetricsServer } from '../src/metrics-server.ts';

/** Whether a TCP connection to host:port is accepted. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2000 });
    socket.once('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

describe('worker metrics endpoint', () => {
  const servers: Server[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => new Promise<void>((done) => s.close(() => done()))));
  });
  const start = async (host?: string) => {
    const registry = new Registry();
    registry.setDefaultLabels({ role: 'worker' });
    const server = await startMetricsServer({ registry, port: 0, ...(host ? { host } : {}), health: () => ({ ok: true }) });
    servers.push(server);
    return server;
  };

  it('binds 127.0.0.1 by default, on a free port that its URL reports', async () => {
    const server = await start();
    const url = new URL(metricsUrl(server));
    assert.equal(url.hostname, '127.0.0.1');
    assert.ok(Number(url.port) > 0, 'port 0 became a real port');
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal((await fetch(new URL('/healthz', url))).status, 200);
    assert.equal(await accepts('127.0.0.2', Number(url.port)), false, 'not reachable on any other address');
  });

  it('binds the address it is given (WORKER_METRICS_HOST), e.g. every interface for a remote scraper', async () => {
    const server = await start('0.0.0.0');
    const port = Number(new URL(metricsUrl(server)).port);
    assert.equal(await accepts('127.0.0.2', port), true);
  });
});
