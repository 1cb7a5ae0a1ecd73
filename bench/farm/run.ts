/**
 * Farm benchmarks, each measured side by side in one run on this machine (real redis-server,
 * s3rver, API and worker processes):
 *
 *  (a) control-plane throughput: frames/s through API + Redis + S3 + worker with the no-op
 *      engine (WORKER_ENGINE=noop), against a bare BullMQ add/process loop on the same Redis;
 *  (b) submit → first sampler step latency (p50, p99), analytic pack, one frame per shot;
 *  (c) worker duty cycle with the bench pack: share of wall time the inference thread is busy
 *      across a 20-frame shot (goal ≥ 95%).
 *
 *   node --import tsx bench/farm/run.ts [--frames 200] [--latency-runs 30] [--duty-frames 20] [--only a,b,c]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { buildBenchPack } from '@celfarm/model-kit';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { ROOT, authed, createApiKey, shotForm, startFarm, waitForShot, type Farm, type ShotView } from '../../test/harness.ts';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '200' },
    'latency-runs': { type: 'string', default: '30' },
    'duty-frames': { type: 'string', default: '20' },
    only: { type: 'string', default: 'a,b,c' },
  },
});
const only = new Set(values.only!.split(','));
const results: Record<string, unknown> = {};
const now = () => performance.now();
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
};

/** One API key per farm, for the project its shots go to (each bench farm serves one project). */
const tokens = new Map<Farm, string>();

async function submit(farm: Farm, request: { project: string; settings: Record<string, unknown> }, files: Parameters<typeof shotForm>[1]): Promise<string> {
  let token = tokens.get(farm);
  if (!token) {
    token = await createApiKey(farm, request.project, ['submit', 'read'], 'bench');
    tokens.set(farm, token);
  }
  const r = await fetch(`${farm.apiUrl}/v1/shots`, { method: 'POST', body: shotForm(request, files), headers: authed(token) });
  const body = (await r.json()) as { id: string };
  if (r.status !== 201) throw new Error(`submit failed ${r.status}: ${JSON.stringify(body)}`);
  return body.id;
}

const wait = (farm: Farm, id: string, done: (s: ShotView) => boolean, timeoutMs: number) => waitForShot(farm.apiUrl, id, done, timeoutMs, tokens.get(farm));

async function throughput() {
  const n = Number(values.frames);
  const farm = await startFarm({ workers: 1, env: { WORKER_ENGINE: 'noop', REDIS_PREFIX: 'benchfarm' } });
  try {
    // Bare BullMQ on the same Redis: add n jobs, a worker acknowledges each.
    const connection = { url: farm.redis.url, maxRetriesPerRequest: null };
    const queue = new Queue('bare', { connection, prefix: 'benchbare' });
    let done = 0;
    let finish!: () => void;
    const all = new Promise<void>((r) => (finish = r));
    const worker = new Worker('bare', async () => undefined, { connection, prefix: 'benchbare', concurrency: 2 });
    worker.on('completed', () => {
      if (++done === n) finish();
    });
    const t0 = now();
    await queue.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'frame', data: { frame: i + 1 } })));
    await all;
    const bareSeconds = (now() - t0) / 1000;
    await worker.close();
    await queue.close();

    const png = await encodePng(sketchFrame(64, 64).image);
    const reference = await encodePng(halfImage(64, 64, COLOURS.red, COLOURS.grey));
    const t1 = now();
    const id = await submit(farm, { project: 'bench', settings: { steps: 1, width: 64, height: 64, seed: 1 } }, { reference, frames: Array(n).fill(png) });
    const shot = await wait(farm, id, (s) => s.state === 'completed' || s.state === 'failed', 600_000);
    const farmSeconds = (now() - t1) / 1000;
    if (shot.state !== 'completed') throw new Error(`throughput shot ${shot.state}`);
    const bareFps = n / bareSeconds;
    const farmFps = n / farmSeconds;
    results.throughput = { frames: n, bareFps, farmFps, ratio: farmFps / bareFps };
    console.log(`(a) control plane, ${n} frames: bare BullMQ ${bareFps.toFixed(0)} jobs/s; farm (API+Redis+S3+worker, noop engine) ${farmFps.toFixed(1)} frames/s; ratio farm/bare ${(farmFps / bareFps).toFixed(4)}`);
  } finally {
    await farm.stop();
  }
}

async function latency() {
  const runs = Number(values['latency-runs']);
  const farm = await startFarm({ workers: 1, env: { REDIS_PREFIX: 'benchlat' } });
  try {
    const png = await encodePng(sketchFrame(128, 128).image);
    const reference = await encodePng(halfImage(128, 128, COLOURS.red, COLOURS.grey));
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = now();
      const id = await submit(farm, { project: 'bench', settings: { steps: 20, width: 128, height: 128, seed: i } }, { reference, frames: [png] });
      await wait(farm, id, (s) => s.active.some((f) => (f.step ?? 0) >= 1) || s.state === 'completed', 60_000);
      ms.push(now() - t0);
    }
    results.latency = { runs, p50ms: quantile(ms, 0.5), p99ms: quantile(ms, 0.99), ms };
    console.log(`(b) submit → first sampler step over ${runs} shots: p50 ${quantile(ms, 0.5).toFixed(0)} ms, p99 ${quantile(ms, 0.99).toFixed(0)} ms`);
  } finally {
    await farm.stop();
  }
}

async function dutyCycle() {
  const n = Number(values['duty-frames']);
  const benchDir = join(ROOT, 'packs', 'bench');
  await buildBenchPack(benchDir);
  const farm = await startFarm({ workers: 1, env: { PACK_DIR: benchDir, REDIS_PREFIX: 'benchduty', LOCK_DURATION_MS: '60000', WORKER_THREADS: '0' } });
  try {
    const frames = await Promise.all(Array.from({ length: n }, (_, i) => encodePng(sketchFrame(512, 512, i, n).image)));
    const reference = await encodePng(halfImage(512, 512, COLOURS.red, COLOURS.grey));
    const t0 = now();
    const id = await submit(farm, { project: 'duty', settings: { mode: 'vanilla', steps: 20, width: 512, height: 512, seed: 1 } }, { reference, frames });
    const running = await wait(farm, id, (s) => s.counts.waiting < s.frameCount, 600_000);
    const tActive = now();
    const shot = await wait(farm, id, (s) => s.state === 'completed' || s.state === 'failed', 1_800_000);
    const tEnd = now();
    if (shot.state !== 'completed') throw new Error(`duty shot ${shot.state}`);
    void running;
    const metrics = await (await fetch(farm.workers[0]!.metricsUrl!)).text();
    const busy = Number(/celfarm_worker_busy_seconds_total\{[^}]*project="duty"[^}]*\} ([0-9.e+-]+)/.exec(metrics)?.[1] ?? NaN);
    const wallActive = (tEnd - tActive) / 1000;
    const wallSubmit = (tEnd - t0) / 1000;
    results.duty = { frames: n, busySeconds: busy, wallFromFirstFrame: wallActive, wallFromSubmit: wallSubmit, duty: busy / wallActive, dutyFromSubmit: busy / wallSubmit };
    console.log(`(c) duty cycle, ${n}-frame shot on the bench pack: inference busy ${busy.toFixed(1)} s of ${wallActive.toFixed(1)} s from the first frame = ${((100 * busy) / wallActive).toFixed(1)}% (goal ≥ 95%); of ${wallSubmit.toFixed(1)} s from submit = ${((100 * busy) / wallSubmit).toFixed(1)}%`);
  } finally {
    await farm.stop();
  }
}

if (only.has('a')) await throughput();
if (only.has('b')) await latency();
if (only.has('c')) await dutyCycle();
await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
await writeFile(join(ROOT, 'bench', 'results', 'farm.json'), `${JSON.stringify(results, null, 2)}\n`);
console.log(`results: ${join(ROOT, 'bench', 'results', 'farm.json')}`);
