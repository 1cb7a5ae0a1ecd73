/**
 * The farm on a Redis Cluster: three redis-server masters on loopback formed into a cluster with
 * `redis-cli --cluster create`, the API and a worker connected through REDIS_CLUSTER_NODES with a
 * hash-tagged prefix. The admin command makes a key there; a shot completes with the reference's
 * colours; its events reach a webhook receiver (signed, each once) and the live feed (pub/sub);
 * both services report ready; every key of the farm — BullMQ's and ours — lies in the prefix's
 * one slot; with the cluster gone, requests get 503 at once. A prefix without a hash tag is
 * refused at boot, saying why.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import type { WebhookEvent } from '@celfarm/contract';
import { loadConfig } from '@celfarm/config';
import { connectRedis, isCluster, type RedisClient } from '@celfarm/jobs';
import { buildAnalyticPack } from '@celfarm/model-kit';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { freePort, startNodeProcess, startRedisCluster, startS3, until, type NodeProcess, type RunningRedisCluster, type RunningS3 } from '@celfarm/services';
import { verify } from '@celfarm/webhooks';
import { authed, ROOT, shotForm, shotFrames, waitForShot, type ShotView } from '../harness.ts';

const run = promisify(execFile);
const SIZE = 64;
const PREFIX = '{e2e}';

/** node:http on 127.0.0.1 that records every POST and answers 200. */
class Receiver {
  readonly hits: { headers: IncomingHttpHeaders; body: string }[] = [];
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        this.hits.push({ headers: req.headers, body });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

describe('the farm on a Redis Cluster', () => {
  let dir: string;
  let cluster: RunningRedisCluster;
  let s3: RunningS3;
  let env: Record<string, string>;
  let api: NodeProcess;
  let worker: NodeProcess;
  /** The API started with a prefix that is no hash tag: it must exit, saying why. */
  let refused: NodeProcess;
  let apiUrl: string;
  let redis: RedisClient;
  let token: string;
  const receiver = new Receiver();

  /** The admin command (apps/api/src/admin.ts) with the farm's environment. */
  const admin = (...args: string[]) => run(process.execPath, ['--import', 'tsx', 'apps/api/src/admin.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env } });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-cluster-'));
    const packDir = join(dir, 'pack');
    [cluster, s3] = await Promise.all([startRedisCluster(join(dir, 'redis')), startS3(join(dir, 's3'), 'celfarm'), buildAnalyticPack(packDir), receiver.start()]);
    const apiPort = await freePort();
    apiUrl = `http://127.0.0.1:${apiPort}`;
    env = {
      REDIS_URL: cluster.url,
      REDIS_CLUSTER_NODES: cluster.nodes,
      REDIS_PREFIX: PREFIX,
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: 'celfarm',
      PACK_DIR: packDir,
      API_HOST: '127.0.0.1',
      API_PORT: String(apiPort),
      WORKER_THREADS: '1',
      LOCK_DURATION_MS: '4000',
      HEARTBEAT_MS: '500',
      WEBHOOK_BACKOFF_MS: '200',
    };
    api = startNodeProcess('api', join(ROOT, 'apps/api/src/main.ts'), env, ROOT);
    worker = startNodeProcess('worker-1', join(ROOT, 'apps/worker/src/main.ts'), { ...env, WORKER_ID: 'worker-1', WORKER_METRICS_PORT: '0' }, ROOT);
    refused = startNodeProcess('api-plain-prefix', join(ROOT, 'apps/api/src/main.ts'), { ...env, REDIS_PREFIX: 'e2e', API_PORT: String(await freePort()) }, ROOT);
    redis = connectRedis(loadConfig(env));
    redis.on('error', () => undefined); // the last test stops the cluster under it
    await Promise.all([api.waitFor(/api listening/, 60_000), worker.waitFor(/worker .* ready/, 60_000)]);
  });

  after(async () => {
    redis?.disconnect();
    await Promise.all([api, worker, refused].map((p) => p?.kill('SIGKILL')));
    await cluster?.stop();
    await s3?.stop();
    await receiver.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is a cluster of three masters, which the services reach and report ready', async () => {
    assert.ok(isCluster(redis));
    const masters = redis.nodes('master');
    assert.equal(masters.length, 3, 'three masters');
    const ready = await fetch(`${apiUrl}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
    const metricsUrl = /metrics on (http:\/\/\S+)\/metrics/.exec(await worker.waitFor(/metrics on http:/))![1]!;
    const workerReady = (await (await fetch(`${metricsUrl}/readyz`)).json()) as { ok: boolean; redis: string };
    assert.deepEqual([workerReady.ok, workerReady.redis], [true, 'up']);
  });

  it('refuses a prefix without a hash tag, saying why', async () => {
    const code = await new Promise<number | null>((resolve) => {
      if (refused.child.exitCode !== null) return resolve(refused.child.exitCode);
      refused.child.once('exit', (c) => resolve(c));
    });
    assert.equal(code, 1);
    const out = refused.output.join('\n');
    assert.match(out, /REDIS_PREFIX: must be a hash tag such as \{e2e\} when REDIS_CLUSTER_NODES is set/);
    assert.match(out, /one slot/);
    assert.doesNotMatch(out, /api listening/);
  });

  it('colorizes a shot; its events reach a webhook and the live feed, each once and signed', async () => {
    // The admin command (straight to Redis) makes the key and allow-lists the receiver.
    token = (await admin('keys', 'create', '--project', 'demo', '--name', 'e2e', '--scopes', 'submit,read,admin')).stdout.trim();
    assert.match(token, /^cf_/);
    await admin('webhooks', 'allow', '--project', 'demo', '--host', new URL(receiver.url).host);
    const sub = await fetch(`${apiUrl}/v1/webhooks`, {
      method: 'POST',
      headers: authed(token, { 'content-type': 'application/json' }),
      body: JSON.stringify({ url: `${receiver.url}/hook`, events: ['*'] }),
    });
    assert.equal(sub.status, 201, await sub.clone().text());
    const { secret } = (await sub.json()) as { secret: string };

    // The live feed listens on pub/sub, which a Cluster forwards from whichever node published.
    const live = new AbortController();
    const feed = await fetch(`${apiUrl}/v1/live`, { headers: authed(token), signal: live.signal });
    assert.equal(feed.status, 200);
    let stream = '';
    const reading = (async () => {
      const reader = feed.body!.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        stream += Buffer.from(value).toString('utf8');
      }
    })().catch(() => undefined);

    const frames = 2;
    const circles = Array.from({ length: frames }, (_, i) => sketchFrame(SIZE, SIZE, i, frames).circle);
    const sketches = await Promise.all(Array.from({ length: frames }, (_, i) => encodePng(sketchFrame(SIZE, SIZE, i, frames).image)));
    const reference = await encodePng(halfImage(SIZE, SIZE, COLOURS.red, COLOURS.grey));
    const r = await fetch(`${apiUrl}/v1/shots`, {
      method: 'POST',
      headers: authed(token),
      body: shotForm({ project: 'demo', settings: { mode: 'background', steps: 4, guidanceScale: 1, seed: 5, width: SIZE, height: SIZE } }, { reference, frames: sketches }),
    });
    const submitted = (await r.json()) as ShotView;
    assert.equal(r.status, 201, JSON.stringify(submitted));
    const shot = await waitForShot(apiUrl, submitted.id, (s) => s.state === 'completed' || s.state === 'failed', 60_000, token);
    assert.equal(shot.state, 'completed', JSON.stringify(shot.error));

    const done = await shotFrames(apiUrl, shot.id, token);
    assert.deepEqual(done.map((f) => f.state), ['completed', 'completed']);
    for (const [i, f] of done.entries()) {
      const res = await fetch(new URL(f.outputUrl!, apiUrl), { headers: authed(token) });
      assert.equal(res.status, 200, `GET ${f.outputUrl}`);
      const { data, info } = await sharp(Buffer.from(await res.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
      const at = (x: number, y: number) => Array.from(data.subarray((Math.round(y) * info.width + Math.round(x)) * info.channels).subarray(0, 3));
      const [inside, corner] = [at(circles[i]!.cx, circles[i]!.cy), at(3, 3)];
      // Foreground takes the reference's red, background its grey (0.2 → 153).
      assert.ok(inside[0]! > 240 && inside[1]! < 15 && inside[2]! < 15, `frame ${f.frame} inside ${inside}`);
      assert.ok(corner.every((v) => Math.abs(v - 153) <= 3), `frame ${f.frame} corner ${corner}`);
    }

    const core = ['frame.completed#1', 'frame.completed#2', 'shot.completed', 'shot.created', 'shot.started'];
    const name = (e: WebhookEvent) => `${e.type}${e.frame ? `#${e.frame}` : ''}`;
    await until('the core events at the receiver', () => {
      const seen = new Set(receiver.hits.map((h) => name(JSON.parse(h.body) as WebhookEvent)));
      return core.every((c) => seen.has(c));
    }, { timeoutMs: 30_000, intervalMs: 50 });
    await new Promise((res) => setTimeout(res, 500)); // anything doubled would arrive now
    const events = receiver.hits.map((h) => {
      const { id } = verify(secret, h.headers, h.body);
      const e = JSON.parse(h.body) as WebhookEvent;
      assert.equal(id, e.id, 'webhook-id is the event id');
      return e;
    });
    assert.ok(events.every((e) => e.shotId === shot.id));
    assert.equal(new Set(events.map((e) => e.id)).size, events.length, 'each event arrives once');

    await until('shot.completed on the live feed', () => stream.includes(`"shotId":"${shot.id}"`) && /event: farm\n(id: .*\n)?data: \{[^\n]*"type":"shot.completed"/.test(stream), { timeoutMs: 10_000, intervalMs: 50 });
    live.abort();
    await reading;
  });

  it("keeps every key of the farm, BullMQ's too, in the prefix's one slot", async () => {
    assert.ok(isCluster(redis));
    const slot = Number(await redis.cluster('KEYSLOT', PREFIX));
    const nodes = await Promise.all(
      redis.nodes('master').map(async (node) => {
        const [size, inSlot] = await Promise.all([node.dbsize(), node.cluster('COUNTKEYSINSLOT', slot)]);
        const keys = inSlot > 0 ? ((await node.cluster('GETKEYSINSLOT', slot, inSlot)) as string[]) : [];
        return { port: node.options.port, size, inSlot: Number(inSlot), keys };
      }),
    );
    const holding = nodes.filter((n) => n.size > 0);
    assert.equal(holding.length, 1, `keys on one node only: ${JSON.stringify(nodes.map((n) => [n.port, n.size]))}`);
    const [owner] = holding;
    assert.equal(owner!.inSlot, owner!.size, 'every key of that node is in the slot');
    assert.ok(owner!.keys.every((k) => k.startsWith(`${PREFIX}:`)), owner!.keys.filter((k) => !k.startsWith(`${PREFIX}:`)).join(', '));
    const families = ['shot:', 'shots', 'events:_outbox', 'events:demo', 'apikey:', 'webhooks:demo', 'workers', 'frames:', 'prepare:', 'shots:', 'webhooks:'].map((f) => `${PREFIX}:${f}`);
    const missing = families.filter((f) => !owner!.keys.some((k) => k.startsWith(f)));
    assert.deepEqual(missing, [], 'records, events, keys, webhooks and the BullMQ queues are all there');
  });

  it('answers 503 at once while no node of the cluster is reachable', async () => {
    await cluster.stop();
    const t0 = Date.now();
    // Bounded: a request held until Redis is back would otherwise hang the suite.
    const r = await fetch(`${apiUrl}/v1/shots`, { headers: authed(token), signal: AbortSignal.timeout(10_000) });
    const shotsMs = Date.now() - t0;
    assert.equal(r.status, 503, await r.clone().text());
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'UNAVAILABLE');
    const t1 = Date.now();
    const ready = await fetch(`${apiUrl}/readyz`, { signal: AbortSignal.timeout(10_000) });
    const readyMs = Date.now() - t1;
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /redis/);
    // Each within seconds (/readyz's probe gives up after 2 s), not held until Redis is back.
    assert.ok(shotsMs < 5000 && readyMs < 5000, `answered in ${shotsMs} ms and ${readyMs} ms`);
  });
});
