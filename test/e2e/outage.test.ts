/**
 * A 30-second storage outage end to end: two worker processes reach s3rver through a TCP proxy
 * that, mid-shot, refuses new connections and resets the open ones (the S3 clients' keep-alive
 * sockets included) — a real outage, not a server whose open connections go on serving. The
 * workers wait it out: the shot completes with no frame failed and no attempt spent, the workers'
 * health says the store was down, shot.json is written once and shot.completed published once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { EventBus } from '@celfarm/jobs';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { startTcpProxy, until, type TcpProxy } from '@celfarm/services';
import { S3ObjectStore, shotKeys } from '@celfarm/storage';
import { authed, createApiKey, shotForm, startFarm, unfinishedFrames, waitForShot, whileHeld, type Farm } from '../harness.ts';

const FRAMES = 40;
const OUTAGE_MS = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a 30 s S3 outage mid-shot', () => {
  let farm: Farm;
  let proxy: TcpProxy;
  let token: string;
  let redis: Redis;
  let store: S3ObjectStore;
  /** The tail of the client bytes through the proxy, for counting requests. */
  let carry = '';
  const puts = new Map<string, number>();

  before(async () => {
    // The API talks to s3rver directly; the workers only through the proxy.
    farm = await startFarm({ workers: 0 });
    proxy = await startTcpProxy({
      targetPort: farm.s3.port,
      tap: (chunk) => {
        // Request lines may straddle chunks: carry a short tail over, never one already counted.
        const text = carry + chunk.toString('latin1');
        let end = 0;
        for (const m of text.matchAll(/PUT \/celfarm\/(\S+?)[ ?]/g)) {
          if (m[1]!.endsWith('/shot.json')) puts.set(m[1]!, (puts.get(m[1]!) ?? 0) + 1);
          end = m.index + m[0].length;
        }
        carry = text.slice(Math.max(end, text.length - 512));
      },
    });
    const env = { S3_ENDPOINT: proxy.url, S3_MAX_ATTEMPTS: '3', S3_RETRY_MAX_DELAY_MS: '500' };
    await Promise.all([farm.startWorker('worker-a', env), farm.startWorker('worker-b', env)]);
    token = await createApiKey(farm, 'demo');
    redis = new Redis(farm.redis.url);
    store = new S3ObjectStore({ endpoint: farm.s3.endpoint, region: 'us-east-1', bucket: 'celfarm', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
  });
  after(async () => {
    store?.destroy();
    redis?.disconnect();
    await proxy?.close();
    await farm?.stop();
  });

  const health = async (metricsUrl: string) => (await (await fetch(metricsUrl.replace(/\/metrics$/, '/healthz'))).json()) as { ok: boolean; store: { state: string } };
  /** The worker's readiness: HTTP status and body. */
  const readiness = async (metricsUrl: string) => {
    const r = await fetch(metricsUrl.replace(/\/metrics$/, '/readyz'));
    return { status: r.status, body: (await r.json()) as { ok: boolean; reasons?: string[] } };
  };

  it('waits the outage out: the shot completes, no frame fails, shot.json once, shot.completed once', async () => {
    const sketches = await Promise.all(Array.from({ length: FRAMES }, (_, i) => encodePng(sketchFrame(128, 128, i, FRAMES).image)));
    const reference = await encodePng(halfImage(128, 128, COLOURS.red, COLOURS.grey));
    const r = await fetch(`${farm.apiUrl}/v1/shots`, {
      method: 'POST',
      body: shotForm({ project: 'demo', settings: { mode: 'vanilla', steps: 12, seed: 3, width: 128, height: 128 } }, { reference, frames: sketches }),
      headers: authed(token),
    });
    const { id } = (await r.json()) as { id: string };
    assert.equal(r.status, 201);
    await waitForShot(farm.apiUrl, id, (s) => s.counts.completed >= 3, 60_000, token);
    // The workers are held (SIGSTOP) from here to the cut, so the outage starts mid-shot however
    // fast the rest would render.
    const reset = await whileHeld(farm.workers, async () => {
      const before = await waitForShot(farm.apiUrl, id, () => true, 5000, token);
      assert.equal(before.state, 'running', 'the outage starts mid-shot');
      assert.ok(before.counts.completed < FRAMES, 'frames are left to render');
      return proxy.cut();
    });
    assert.ok(reset > 0, 'the workers had open connections, and lost them');
    const t0 = Date.now();
    let sawDown = false;
    let sawNotReady = false;
    let failedDuring = 0;
    while (Date.now() - t0 < OUTAGE_MS) {
      const states = await Promise.all(farm.workers.map((w) => health(w.metricsUrl!)));
      sawDown ||= states.some((h) => h.ok && h.store.state === 'down');
      const ready = await Promise.all(farm.workers.map((w) => readiness(w.metricsUrl!)));
      sawNotReady ||= ready.some((r) => r.status === 503 && !r.body.ok && (r.body.reasons ?? []).some((x) => x.startsWith('object store down')));
      const v = await waitForShot(farm.apiUrl, id, () => true, 5000, token);
      failedDuring = Math.max(failedDuring, v.counts.failed);
      assert.notEqual(v.state, 'failed', 'the shot is not failed during the outage');
      await sleep(1000);
    }
    const during = await waitForShot(farm.apiUrl, id, () => true, 5000, token);
    await proxy.restore();
    assert.ok(sawDown, "a worker's /healthz said the store was down (and the worker itself ok)");
    assert.ok(sawNotReady, "a worker's /readyz answered 503 naming the store while it was down");
    assert.equal(failedDuring, 0, 'no frame failed during the outage');
    assert.ok(during.counts.completed < FRAMES, 'the outage held frames up');

    const done = await waitForShot(farm.apiUrl, id, (s) => s.state === 'completed' || s.state === 'failed', 120_000, token);
    assert.equal(done.state, 'completed', await unfinishedFrames(farm.apiUrl, id, token));
    assert.equal(done.counts.completed, FRAMES);
    const states = await Promise.all(farm.workers.map((w) => health(w.metricsUrl!)));
    assert.deepEqual(states.map((h) => h.store.state), ['up', 'up']);
    assert.deepEqual((await Promise.all(farm.workers.map((w) => readiness(w.metricsUrl!)))).map((r) => r.status), [200, 200], 'ready again');

    // No frame spent an attempt on the outage.
    const frames = new Queue('frames', { connection: redis, prefix: farm.env.REDIS_PREFIX });
    try {
      const jobs = await frames.getJobs(['completed', 'failed']);
      const mine = jobs.filter((j) => (j.data as { shotId: string }).shotId === id);
      assert.equal(mine.length, FRAMES);
      assert.deepEqual([...new Set(mine.map((j) => j.attemptsMade))], [1], 'one attempt each: the successful one');
    } finally {
      await frames.close();
    }
    const keys = shotKeys('', 'demo', id);
    const outputs = (await store.list(keys.outputsPrefix)).map((o) => o.key);
    assert.equal(outputs.filter((k) => k.endsWith('.png')).length, FRAMES);
    assert.equal(outputs.filter((k) => k.endsWith('.webp')).length, FRAMES);
    assert.ok(await store.head(keys.manifest), 'shot.json exists');
    assert.equal(puts.get(keys.manifest), 1, `shot.json PUT once (${JSON.stringify([...puts])})`);
    const bus = new EventBus(redis, farm.env.REDIS_PREFIX);
    // shot.completed is published just after the shot's state: waited for, then counted.
    const es = await until('shot.completed', async () => {
      const mine = (await bus.recent('demo', 1000)).filter((e) => e.shotId === id);
      return mine.some((e) => e.type === 'shot.completed') ? mine : undefined;
    });
    assert.equal(es.filter((e) => e.type === 'shot.completed').length, 1);
    assert.equal(es.filter((e) => e.type === 'frame.completed').length, FRAMES);
    assert.equal(es.filter((e) => e.type === 'frame.failed' || e.type === 'shot.failed').length, 0);
  });
});
