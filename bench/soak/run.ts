/**
 * Soak bench: does a worker's memory grow with the frames it renders? One worker process on a
 * real farm (redis-server, s3rver, the API) renders thousands of small frames (analytic pack,
 * 64×64, 1 step) while this bench scrapes the worker's /metrics — prom-client's process metrics
 * `celfarm_process_resident_memory_bytes` (RSS, every thread) and
 * `celfarm_nodejs_heap_size_used_bytes` (the main thread's JS heap), against
 * `celfarm_frames_total{outcome="completed"}`. Then the same with the no-op engine
 * (WORKER_ENGINE=noop: no inference thread, the same queues, S3, records and events) as the
 * baseline. Prints growth per 1,000 frames after the warm-up, for both engines.
 *
 *   node --import tsx bench/soak/run.ts [--frames 3000] [--warmup 500] [--shot-frames 500] [--engines pipeline,noop]
 *
 * Growth is the least-squares slope, over frames after the warm-up, of the lowest value seen in
 * each window of `--window` frames (250): the heap's low points are what survives garbage
 * collection, so a leak shows as a rising floor while the sawtooth of live garbage does not.
 * Always exits 0 when it ran: it measures, it does not judge. Numbers go to bench/results/soak.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { ROOT, authed, createApiKey, shotForm, waitForShot, startFarm, type ShotView } from '../../test/harness.ts';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '500' },
    'shot-frames': { type: 'string', default: '500' },
    window: { type: 'string', default: '250' },
    size: { type: 'string', default: '64' },
    steps: { type: 'string', default: '1' },
    engines: { type: 'string', default: 'pipeline,noop' },
    'scrape-ms': { type: 'string', default: '500' },
  },
});
const FRAMES = Number(values.frames);
const WARMUP = Number(values.warmup);
const SHOT_FRAMES = Math.min(Number(values['shot-frames']), 1000);
const WINDOW = Number(values.window);
const SIZE = Number(values.size);
const STEPS = Number(values.steps);
const SCRAPE_MS = Number(values['scrape-ms']);
const MB = 1024 * 1024;

interface Sample {
  /** Seconds since the first submit. */
  t: number;
  frames: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

interface Growth {
  /** MB per 1,000 frames, least squares over the window floors after the warm-up. */
  perKFrames: number;
  /** Floor of the first and of the last window after the warm-up, MB. */
  first: number;
  last: number;
  max: number;
}

interface EngineResult {
  engine: string;
  frames: number;
  seconds: number;
  fps: number;
  samples: number;
  rss: Growth;
  heapUsed: Growth;
  external: Growth;
  /** Floors per 500 frames, for the table. */
  table: { frames: number; rssMb: number; heapMb: number }[];
  series: Sample[];
}

/** Sum of a metric's samples in Prometheus text whose labels match `labels` (all of them). */
function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    const m = /^[^{ ]+(?:\{([^}]*)\})? ([^ ]+)/.exec(line);
    if (!m) continue;
    const lbl = Object.fromEntries([...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => lbl[k] === v)) sum = (sum ?? 0) + Number(m[2]);
  }
  return sum;
}

/** Lowest value per window of frames, then the least-squares slope of those floors. */
function growth(samples: Sample[], pick: (s: Sample) => number): { growth: Growth; floors: { frames: number; value: number }[] } {
  const windows = new Map<number, number>();
  for (const s of samples) {
    if (s.frames < WARMUP) continue;
    const w = Math.floor(s.frames / WINDOW);
    windows.set(w, Math.min(windows.get(w) ?? Infinity, pick(s)));
  }
  const floors = [...windows].sort((a, b) => a[0] - b[0]).map(([w, v]) => ({ frames: (w + 0.5) * WINDOW, value: v / MB }));
  const n = floors.length;
  const mx = floors.reduce((a, f) => a + f.frames, 0) / Math.max(1, n);
  const my = floors.reduce((a, f) => a + f.value, 0) / Math.max(1, n);
  const sxx = floors.reduce((a, f) => a + (f.frames - mx) ** 2, 0);
  const sxy = floors.reduce((a, f) => a + (f.frames - mx) * (f.value - my), 0);
  return {
    growth: {
      perKFrames: n >= 2 && sxx > 0 ? (sxy / sxx) * 1000 : NaN,
      first: floors[0]?.value ?? NaN,
      last: floors.at(-1)?.value ?? NaN,
      max: Math.max(...samples.filter((s) => s.frames >= WARMUP).map((s) => pick(s) / MB)),
    },
    floors,
  };
}

async function soak(engine: string): Promise<EngineResult> {
  const farm = await startFarm({ workers: 1, env: { WORKER_ENGINE: engine, REDIS_PREFIX: `soak${engine}`, LOCK_DURATION_MS: '30000' } });
  try {
    const worker = farm.workers[0]!;
    if (!worker.metricsUrl) throw new Error('the worker printed no metrics address');
    const token = await createApiKey(farm, 'soak', ['submit', 'read'], 'soak');
    const png = await encodePng(sketchFrame(SIZE, SIZE).image);
    const reference = await encodePng(halfImage(SIZE, SIZE, COLOURS.red, COLOURS.grey));
    const samples: Sample[] = [];
    const t0 = performance.now();
    let scraping = true;
    const scrape = async () => {
      while (scraping) {
        try {
          const text = await (await fetch(worker.metricsUrl!)).text();
          samples.push({
            t: (performance.now() - t0) / 1000,
            frames: metric(text, 'celfarm_frames_total', { outcome: 'completed' }) ?? 0,
            rss: metric(text, 'celfarm_process_resident_memory_bytes') ?? NaN,
            heapUsed: metric(text, 'celfarm_nodejs_heap_size_used_bytes') ?? NaN,
            heapTotal: metric(text, 'celfarm_nodejs_heap_size_total_bytes') ?? NaN,
            external: metric(text, 'celfarm_nodejs_external_memory_bytes') ?? NaN,
          });
        } catch {
          // A missed scrape is a missing sample, nothing more.
        }
        await new Promise((r) => setTimeout(r, SCRAPE_MS));
      }
    };
    const scraper = scrape();
    // Shots of at most SHOT_FRAMES frames, all submitted up front so the worker never waits.
    const ids: string[] = [];
    for (let left = FRAMES; left > 0; left -= SHOT_FRAMES) {
      const n = Math.min(SHOT_FRAMES, left);
      const r = await fetch(`${farm.apiUrl}/v1/shots`, {
        method: 'POST',
        headers: authed(token),
        body: shotForm({ project: 'soak', settings: { mode: 'vanilla', steps: STEPS, width: SIZE, height: SIZE, seed: ids.length } }, { reference, frames: Array<Uint8Array>(n).fill(png) }),
      });
      const body = (await r.json()) as { id: string };
      if (r.status !== 201) throw new Error(`submit: ${r.status} ${JSON.stringify(body)}`);
      ids.push(body.id);
    }
    let lastProgress = 0;
    for (const id of ids) {
      const shot: ShotView = await waitForShot(farm.apiUrl, id, (s) => s.state === 'completed' || s.state === 'failed', 3_600_000, token);
      if (shot.state !== 'completed') throw new Error(`soak shot ${id} ${shot.state}: ${JSON.stringify(shot.error)}`);
      const done = samples.at(-1)?.frames ?? 0;
      if (done - lastProgress >= 1000 || id === ids.at(-1)) {
        const s = samples.at(-1)!;
        console.log(`  ${engine}: ${done} frames, ${s.t.toFixed(0)} s, RSS ${(s.rss / MB).toFixed(0)} MB, heap used ${(s.heapUsed / MB).toFixed(0)} MB`);
        lastProgress = done;
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    // One last sample after the final frame.
    await new Promise((r) => setTimeout(r, SCRAPE_MS * 2));
    scraping = false;
    await scraper;
    const rss = growth(samples, (s) => s.rss);
    const heap = growth(samples, (s) => s.heapUsed);
    const external = growth(samples, (s) => s.external);
    const table: EngineResult['table'] = [];
    for (let f = 0; f <= FRAMES; f += 500) {
      const near = samples.filter((s) => s.frames >= f - WINDOW && s.frames <= f + WINDOW);
      if (near.length) table.push({ frames: f, rssMb: Math.min(...near.map((s) => s.rss)) / MB, heapMb: Math.min(...near.map((s) => s.heapUsed)) / MB });
    }
    return { engine, frames: FRAMES, seconds, fps: FRAMES / seconds, samples: samples.length, rss: rss.growth, heapUsed: heap.growth, external: external.growth, table, series: samples };
  } finally {
    await farm.stop();
  }
}

const fmt = (g: Growth) => `${g.perKFrames >= 0 ? '+' : ''}${g.perKFrames.toFixed(1)} MB per 1,000 frames (${g.first.toFixed(0)} → ${g.last.toFixed(0)} MB, max ${g.max.toFixed(0)} MB)`;

console.log(`soak: ${FRAMES} frames of ${SIZE}×${SIZE}, ${STEPS} step(s), analytic pack, one worker; warm-up ${WARMUP} frames, floors per ${WINDOW} frames`);
const results: EngineResult[] = [];
for (const engine of values.engines!.split(',')) {
  console.log(`== WORKER_ENGINE=${engine}`);
  const r = await soak(engine);
  results.push(r);
  console.log(`  ${r.frames} frames in ${r.seconds.toFixed(0)} s (${r.fps.toFixed(1)} frames/s), ${r.samples} samples`);
  console.log('  frames   RSS floor   heap-used floor');
  for (const row of r.table) console.log(`  ${String(row.frames).padStart(6)}   ${row.rssMb.toFixed(0).padStart(6)} MB   ${row.heapMb.toFixed(0).padStart(8)} MB`);
  console.log(`  RSS growth after warm-up: ${fmt(r.rss)}`);
  console.log(`  JS heap (main thread) growth after warm-up: ${fmt(r.heapUsed)}`);
  console.log(`  external memory growth after warm-up: ${fmt(r.external)}`);
}
const pipeline = results.find((r) => r.engine === 'pipeline');
const noop = results.find((r) => r.engine === 'noop');
if (pipeline && noop) {
  console.log('== summary (growth per 1,000 frames after warm-up; goal: 0 for both)');
  console.log(`  RSS:     pipeline ${pipeline.rss.perKFrames.toFixed(1)} MB, noop ${noop.rss.perKFrames.toFixed(1)} MB, difference ${(pipeline.rss.perKFrames - noop.rss.perKFrames).toFixed(1)} MB`);
  console.log(`  JS heap: pipeline ${pipeline.heapUsed.perKFrames.toFixed(1)} MB, noop ${noop.heapUsed.perKFrames.toFixed(1)} MB, difference ${(pipeline.heapUsed.perKFrames - noop.heapUsed.perKFrames).toFixed(1)} MB`);
  console.log(`  RSS after the run / after the warm-up: pipeline ${(pipeline.rss.last / pipeline.rss.first).toFixed(3)}, noop ${(noop.rss.last / noop.rss.first).toFixed(3)}`);
}
await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
await writeFile(join(ROOT, 'bench', 'results', 'soak.json'), `${JSON.stringify({ frames: FRAMES, warmup: WARMUP, window: WINDOW, size: SIZE, steps: STEPS, results }, null, 2)}\n`);
console.log(`results: ${join(ROOT, 'bench', 'results', 'soak.json')}`);
