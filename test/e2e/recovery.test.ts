/**
 * Worker deaths end to end: the API and worker processes on real Redis and S3, workers SIGKILLed
 * while they render a frame, a replacement started after each kill (as a supervisor would).
 * FRAME_STALL_LIMIT is 2 here: a frame may lose its worker twice and still be rendered; the third
 * time it fails with WORKER_LOST — recorded, announced once, and retryable.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { EventBus, type FarmEvent } from '@celfarm/jobs';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { S3ObjectStore, shotKeys } from '@celfarm/storage';
import { authed, createApiKey, shotForm, shotFrames, startFarm, unfinishedFrames, waitForShot, type Farm, type ShotView } from '../harness.ts';

/** Slow enough on a CPU (seconds per frame) that a frame is seen active and its worker killed mid-frame. */
const SETTINGS = { mode: 'vanilla', steps: 60, seed: 4, width: 512, height: 512, batchSize: 2 };

describe('frames survive their workers being killed', () => {
  let farm: Farm;
  let token: string;
  let redis: Redis;
  let bus: EventBus;
  let store: S3ObjectStore;
  let spawned = 0;
  const booting: Promise<unknown>[] = [];

  before(async () => {
    farm = await startFarm({ workers: 2, env: { LOCK_DURATION_MS: '2000', FRAME_STALL_LIMIT: '2' } });
    token = await createApiKey(farm, 'demo');
    redis = new Redis(farm.redis.url);
    bus = new EventBus(redis, farm.env.REDIS_PREFIX);
    store = new S3ObjectStore({ endpoint: farm.s3.endpoint, region: 'us-east-1', bucket: 'celfarm', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
  });
  after(async () => {
    await Promise.allSettled(booting);
    store?.destroy();
    redis?.disconnect();
    await farm?.stop();
  });

  const view = (id: string, done: (s: ShotView) => boolean, timeoutMs: number) => waitForShot(farm.apiUrl, id, done, timeoutMs, token);
  const frameOf = async (id: string, frame: number) => (await shotFrames(farm.apiUrl, id, token)).find((f) => f.frame === frame)!;

  async function submit(frames: number): Promise<string> {
    const sketches = await Promise.all(Array.from({ length: frames }, (_, i) => encodePng(sketchFrame(256, 256, i, frames).image)));
    const reference = await encodePng(halfImage(256, 256, COLOURS.red, COLOURS.grey));
    const r = await fetch(`${farm.apiUrl}/v1/shots`, { method: 'POST', body: shotForm({ project: 'demo', settings: SETTINGS }, { reference, frames: sketches }), headers: authed(token) });
    const body = (await r.json()) as { id: string };
    assert.equal(r.status, 201, JSON.stringify(body));
    return body.id;
  }

  /**
   * Waits until frame `frame` samples on a live worker, SIGKILLs that worker and starts a
   * replacement (not awaited: the frame goes on meanwhile). Returns the killed worker's name.
   */
  async function killHolder(id: string, frame: number, killed: string[]): Promise<string> {
    const seen = await view(
      id,
      (s) => {
        const f = s.active.find((x) => x.frame === frame);
        return !!f && (f.step ?? 0) >= 1 && !!farm.workers.find((w) => w.name === f.worker) && !killed.includes(f.worker!);
      },
      60_000,
    );
    const victim = farm.workers.find((w) => w.name === seen.active.find((x) => x.frame === frame)!.worker)!;
    await victim.kill('SIGKILL');
    farm.workers.splice(farm.workers.indexOf(victim), 1);
    killed.push(victim.name);
    booting.push(farm.startWorker(`replacement-${++spawned}`));
    return victim.name;
  }

  const events = async (id: string): Promise<FarmEvent[]> => (await bus.recent('demo', 1000)).filter((e) => e.shotId === id);
  const count = (es: FarmEvent[], type: FarmEvent['type'], frame?: number) => es.filter((e) => e.type === type && (frame === undefined || e.frame === frame)).length;

  async function assertOneOutputPerFrame(id: string, frames: number): Promise<void> {
    const listed = (await store.list(shotKeys('', 'demo', id).outputsPrefix)).map((o) => o.key.split('/').slice(-2).join('/'));
    const expected = Array.from({ length: frames }, (_, i) => String(i + 1).padStart(5, '0'));
    assert.deepEqual(listed, [...expected.map((n) => `outputs/${n}.png`), ...expected.map((n) => `previews/${n}.webp`)]);
  }

  it('renders a frame whose worker is SIGKILLed twice in a row, once, with a consistent record', async () => {
    const id = await submit(2);
    const killed: string[] = [];
    for (let k = 0; k < 2; k++) await killHolder(id, 1, killed);
    const done = await view(id, (s) => s.state === 'completed' || s.state === 'failed', 120_000);
    assert.equal(done.state, 'completed', await unfinishedFrames(farm.apiUrl, id, token));
    const frame = await frameOf(id, 1);
    assert.equal(frame.state, 'completed');
    assert.ok(frame.attempts >= 3, `attempts ${frame.attempts}`);
    assert.ok(!killed.includes(frame.worker!), `completed on ${frame.worker}, not on a killed worker (${killed.join(', ')})`);
    assert.equal(frame.error, undefined);
    await assertOneOutputPerFrame(id, 2);
    await waitFor(async () => count(await events(id), 'shot.completed') === 1);
    const es = await events(id);
    assert.equal(count(es, 'frame.completed', 1), 1, 'frame.completed once');
    assert.equal(count(es, 'frame.failed'), 0);
  });

  it('fails a frame that lost its worker more than FRAME_STALL_LIMIT times with WORKER_LOST, once; retry renders it', async () => {
    const id = await submit(1);
    const killed: string[] = [];
    for (let k = 0; k < 3; k++) await killHolder(id, 1, killed);
    const failed = await view(id, (s) => s.state === 'completed' || s.state === 'failed', 120_000);
    const frame = await frameOf(id, 1);
    assert.equal(failed.state, 'failed', JSON.stringify(frame));
    assert.deepEqual([frame.state, frame.error?.code], ['failed', 'WORKER_LOST'], JSON.stringify(frame));
    await waitFor(async () => count(await events(id), 'shot.failed') === 1);
    const es = await events(id);
    assert.equal(count(es, 'frame.failed', 1), 1, 'frame.failed once');
    assert.equal(count(es, 'frame.completed'), 0);

    const retry = await fetch(`${farm.apiUrl}/v1/shots/${id}/retry`, { method: 'POST', headers: authed(token) });
    assert.equal(retry.status, 200, await retry.text());
    const done = await view(id, (s) => s.state === 'completed' || s.state === 'failed', 120_000);
    assert.equal(done.state, 'completed', await unfinishedFrames(farm.apiUrl, id, token));
    assert.equal((await frameOf(id, 1)).state, 'completed');
    await assertOneOutputPerFrame(id, 1);
    await waitFor(async () => count(await events(id), 'shot.completed') === 1);
    assert.equal(count(await events(id), 'frame.completed', 1), 1);
  });
});

async function waitFor(probe: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}
