/**
 * The worker process as deployed: `node --import tsx apps/worker/src/main.ts` with its
 * configuration in the environment, the pack fetched from S3 into a cache. It announces itself,
 * joins the registry, serves /healthz and /metrics, colorizes a submitted shot, and on SIGTERM
 * leaves the registry and exits 0; a second boot reuses the verified pack cache.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { FarmQueues, ShotStore } from '@celfarm/jobs';
import { buildAnalyticPack } from '@celfarm/model-kit';
import { packFiles } from '@celfarm/pipeline';
import { freePort } from '@celfarm/services';
import { readPackManifest } from '@celfarm/pipeline';

const readManifest = async (dir: string) => (await readPackManifest({ dir })).manifest;
import { BUCKET, sketchPngs, SIZE, startServices, submitShot, waitFor, waitForShot, type Services } from './fixtures.ts';

const ROOT = resolve(import.meta.dirname, '../../..');

interface Proc {
  child: ChildProcess;
  lines: string[];
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  exit: Promise<number | null>;
}

function startWorker(env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', 'apps/worker/src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const onData = (buf: Buffer) => {
    lines.push(...buf.toString('utf8').split('\n').filter(Boolean));
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exit = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return {
    child,
    lines,
    exit,
    waitFor(re, timeoutMs = 30_000) {
      return new Promise((done, fail) => {
        const check = () => {
          const line = lines.find((l) => re.test(l));
          if (!line) return;
          cleanup();
          done(line);
        };
        const timer = setTimeout(() => {
          cleanup();
          fail(new Error(`no line matching ${re} within ${timeoutMs} ms:\n${lines.join('\n')}`));
        }, timeoutMs);
        const onExit = () => {
          cleanup();
          fail(new Error(`worker exited before printing ${re}:\n${lines.join('\n')}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
          child.off('exit', onExit);
        };
        waiters.add(check);
        child.once('exit', onExit);
        check();
      });
    },
  };
}

/** The value of the sample of `name` whose labels include `label` (label order is the registry's). */
function sample(text: string, name: string, label: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('worker process (main.ts)', () => {
  let s: Services;
  let redis: Redis;
  let bull: Redis;
  let store: ShotStore;
  let queues: FarmQueues;
  let env: Record<string, string>;
  const prefix = `wm${process.pid}`;
  const running: Proc[] = [];

  before(async () => {
    s = await startServices();
    const built = join(s.dir, 'built');
    await buildAnalyticPack(built);
    for (const file of ['pack.json', ...packFiles(await readManifest(built))]) await s.objects.put(`models/analytic/${file}`, await readFile(join(built, file)));
    redis = new Redis(s.redis.url);
    bull = new Redis(s.redis.url, { maxRetriesPerRequest: null });
    store = new ShotStore(redis, prefix);
    queues = new FarmQueues({ connection: bull, prefix, frameAttempts: 2 });
    env = {
      REDIS_URL: s.redis.url,
      REDIS_PREFIX: prefix,
      S3_ENDPOINT: s.s3.endpoint,
      S3_BUCKET: BUCKET,
      S3_PREFIX: 'studio',
      PACK_DIR: '',
      PACK_S3_PREFIX: `s3://${BUCKET}/models/analytic`,
      PACK_CACHE_DIR: join(s.dir, 'pack-cache'),
      WORKER_ID: 'wmain',
      WORKER_THREADS: '1',
      HEARTBEAT_MS: '200',
      LOCK_DURATION_MS: '5000',
    };
  });
  after(async () => {
    for (const p of running) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await queues.close();
    redis.disconnect();
    bull.disconnect();
    await s.stop();
  });

  it('boots from an S3 pack, serves a shot, health and metrics, and leaves cleanly on SIGTERM', async () => {
    const port = await freePort();
    const w = startWorker({ ...env, WORKER_METRICS_PORT: String(port) });
    running.push(w);
    await w.waitFor(/^worker wmain ready$/, 60_000);
    assert.ok(w.lines.some((l) => /pack analytic@1\.0\.0 \(download .*\) on cpu/.test(l)), w.lines.join('\n'));

    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(((await health.json()) as { ok: boolean; pack: string }).pack, 'analytic@1.0.0');
    const [entry] = await store.workers(10_000);
    assert.equal(entry?.id, 'wmain');
    assert.equal(entry?.pid, w.child.pid);

    const manifest = await readManifest(join(env.PACK_CACHE_DIR!, 'analytic@1.0.0'));
    const farm = { store, objects: s.objects, queues, objectPrefix: 'studio', manifest };
    const { shot } = await submitShot(farm, { settings: { mode: 'vanilla', steps: 4, width: SIZE, height: SIZE }, frames: await sketchPngs(2) });
    const done = await waitForShot(store, shot.id, ['completed', 'failed']);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    await w.waitFor(new RegExp(`^frame shot=${shot.id} frame=2 seconds=`));
    await waitFor(async () => (await store.workers(10_000))[0]?.framesDone === 2, 'the heartbeat to count 2 frames');

    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.equal(sample(metrics, 'celfarm_frames_total', 'outcome="completed"'), 2);
    assert.ok(sample(metrics, 'celfarm_model_load_seconds', 'pack="analytic@1.0.0"')! > 0);
    assert.equal(sample(metrics, 'celfarm_frame_stage_duration_seconds_count', 'stage="sample"'), 2);
    assert.equal(sample(metrics, 'celfarm_reference_context_cache_total', 'result="miss"'), 1);
    assert.equal(sample(metrics, 'celfarm_reference_context_cache_total', 'result="memory"'), 2);
    assert.ok(sample(metrics, 'celfarm_worker_busy_seconds_total', 'project="demo"')! > 0);

    w.child.kill('SIGTERM');
    assert.equal(await w.exit, 0, w.lines.join('\n'));
    assert.deepEqual(await store.workers(10_000), [], 'gone from the registry');
  });

  it('reuses the verified pack cache on the next boot, and on SIGTERM finishes the frame in progress', async () => {
    const w = startWorker(env);
    running.push(w);
    await w.waitFor(/^worker wmain ready$/, 60_000);
    assert.ok(w.lines.some((l) => /pack analytic@1\.0\.0 \(cache /.test(l)), w.lines.join('\n'));

    const manifest = await readManifest(join(env.PACK_CACHE_DIR!, 'analytic@1.0.0'));
    const farm = { store, objects: s.objects, queues, objectPrefix: 'studio', manifest };
    // Big enough that the frame is still sampling when the signal arrives.
    const settings = { mode: 'vanilla', steps: 100, width: 768, height: 768, batchSize: 8, guidanceScale: 4 };
    const { shot } = await submitShot(farm, { settings, frames: await sketchPngs(1) });
    await waitFor(async () => (await store.frames(shot.id))[0]?.stage === 'sample', 'the frame to sample');
    w.child.kill('SIGTERM');
    assert.equal(await w.exit, 0, w.lines.join('\n'));
    const frame = await store.frame(shot.id, 1);
    assert.equal(frame?.state, 'completed', 'the frame in progress finished before the worker left');
    assert.ok(w.lines.some((l) => l.startsWith(`frame shot=${shot.id} frame=1 `)));
  });
});
