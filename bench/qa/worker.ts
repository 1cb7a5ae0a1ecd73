/**
 * QA bench, worker side: what shot QA adds to a frame job in the worker (apps/worker/src/frame-qa.ts),
 * on real redis-server and s3rver, at 768² (or --size), as the median of --reps runs after 2
 * warm-ups, wall and process CPU milliseconds:
 *
 *   node --import tsx bench/qa/worker.ts [--size 768] [--reps 10]
 *
 * - `own`: the sketch fitted to the output (letterbox resize), the stored 8-bit output back to
 *   planar, analyzeFrame + scoreFrame against the cached reference palette — synchronous work on
 *   the BullMQ thread, before the frame's uploads;
 * - `pair, previous read back`: frame k completes after k−1: GET + PNG decode of k−1's output and
 *   sketch, its sketch fitted, flicker against k's kept analysis, the guarded write;
 * - `pair, next read back`: frame k completes after k+1: the same, plus a full analyzeFrame of k+1
 *   (flicker is always scored with the later frame as `frame`);
 * - the read-back's GETs and decodes alone.
 * Frames come from bench/qa/scene.ts (shaded, grainy character, 3-px ink lines; frame 2 moved 6 px).
 * Always exits 0: it measures. The object store is a local s3rver: a GET over the network to a
 * real S3 adds its latency (not CPU) to the pair lines.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { newShotId, ShotStore, type FrameRecord, type ShotRecord } from '@celfarm/jobs';
import { createMetrics } from '@celfarm/metrics';
import { buildAnalyticPack } from '@celfarm/model-kit';
import { decodeImage, encodePng, readPackManifest, resolveSettings, toRgb8, type Planar } from '@celfarm/pipeline';
import { startRedis, startS3 } from '@celfarm/services';
import { S3ObjectStore, shotKeys } from '@celfarm/storage';
import { FrameQaScorer, sketchAtOutput, storedOutput } from '../../apps/worker/src/frame-qa.ts';
import { frame as sceneFrame } from './scene.ts';

function parseArgs(argv: string[]): { size: number; reps: number } {
  const args = { size: 768, reps: 10 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const value = Number(inline ?? argv[++i]);
    if (!Number.isInteger(value) || value < 1) throw new Error(`${flag} needs a positive integer`);
    if (flag === '--size') args.size = value;
    else if (flag === '--reps') args.reps = value;
    else throw new Error(`unknown option ${flag}\nusage: worker.ts [--size 768] [--reps 10]`);
  }
  return args;
}

async function time(reps: number, fn: () => Promise<void>, reset: () => Promise<void>): Promise<{ wall: number; cpu: number }> {
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < reps + 2; i++) {
    await reset();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    if (i < 2) continue;
    walls.push(wall);
    cpus.push((c.user + c.system) / 1000);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  return { wall: median(walls), cpu: median(cpus) };
}

const { size: S, reps } = parseArgs(process.argv.slice(2));
const dir = await mkdtemp(join(tmpdir(), 'celfarm-qa-bench-'));
const redisServer = await startRedis(join(dir, 'redis'));
const s3 = await startS3(join(dir, 's3'), 'celfarm');
const objects = new S3ObjectStore({ endpoint: s3.endpoint, region: 'us-east-1', bucket: 'celfarm', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
const redis = new Redis(redisServer.url);
try {
  await buildAnalyticPack(join(dir, 'pack'));
  const manifest = (await readPackManifest({ dir: join(dir, 'pack') })).manifest;
  const { settings } = resolveSettings({ mode: 'vanilla', width: S, height: S }, manifest, { frameSize: { width: S, height: S } });
  if (settings.width !== S || settings.height !== S) throw new Error(`the pack renders ${settings.width}×${settings.height}, not ${S}²`);

  const store = new ShotStore(redis, 'qabench');
  const id = newShotId();
  const keys = shotKeys('bench', 'demo', id);
  const scenes = [sceneFrame(S, 0, 1), sceneFrame(S, 6, 2)];
  const sketchOf = (p: Planar): Planar => ({ ...p, data: p.data.slice() });
  const now = new Date().toISOString();
  const shot: ShotRecord = {
    id,
    project: 'demo',
    state: 'running',
    createdAt: now,
    updatedAt: now,
    settings,
    warnings: [],
    seed: 1,
    priority: 50,
    pack: { id: manifest.id, version: manifest.version },
    frameCount: 2,
    inputs: { frames: [keys.frameInput(1), keys.frameInput(2)], reference: keys.reference },
    failedFrameShare: 0,
    awaitingUploads: false,
    round: 0,
  };
  const records: FrameRecord[] = [1, 2].map((frame) => ({ frame, state: 'completed', attempts: 1, seed: frame, output: keys.output(frame) }));
  await store.create(shot, records);
  await objects.put(keys.reference, await encodePng(scenes[0]!.output), 'image/png');
  for (const [i, sc] of scenes.entries()) {
    await objects.put(keys.frameInput(i + 1), await encodePng(sc.sketch), 'image/png');
    await objects.put(keys.output(i + 1), await encodePng(sc.output), 'image/png');
  }

  const qa = new FrameQaScorer({ store, objects, metrics: createMetrics('worker'), objectPrefix: 'bench', maxPixels: 1 << 26 });
  // The 8-bit pixels the frame job has anyway (its PNG is encoded from them).
  const rgb8s = scenes.map((sc) => toRgb8(sc.output));
  /** What the frame job adds for frame `k`: its sketch fitted, the 8-bit output back to planar, its own scores. */
  const own = async (k: number) => {
    const sc = scenes[k - 1]!;
    const rgb8 = rgb8s[k - 1]!;
    const fitted = sketchAtOutput(sketchOf(sc.sketch), settings);
    return qa.own(shot, k, { output: storedOutput(rgb8, S, S), sketch: fitted, sketchMask: null, box: { left: 0, top: 0, width: S, height: S } });
  };
  await own(1); // the reference palette, once per shot and worker
  const [a1, a2] = [(await own(1)).analysis, (await own(2)).analysis];
  const unscore = async () => {
    await store.setFrame(id, 2, { qa: undefined });
  };
  const noop = async () => undefined;

  const [outputKey, sketchKey] = [keys.output(1), keys.frameInput(1)];
  const pngs = await Promise.all([objects.get(outputKey), objects.get(sketchKey)]);
  const lines: [string, { wall: number; cpu: number }][] = [
    ['own (fit + 8-bit back + analyzeFrame + scoreFrame)', await time(reps, async () => void (await own(2)), noop)],
    ['  of a pair: GET of the output and the sketch', await time(reps, async () => void (await Promise.all([objects.get(outputKey), objects.get(sketchKey)])), noop)],
    ['  of a pair: decodeImage of both', await time(reps, async () => void (await Promise.all(pngs.map((b) => decodeImage(b!, 'x', { maxPixels: 1 << 26 })))), noop)],
    ['pair, previous read back (2 GET + 2 decode + fit + flicker + write)', await time(reps, () => qa.pairs(shot, 2, a2), unscore)],
    ['pair, next read back (as above + analyzeFrame of the next)', await time(reps, () => qa.pairs(shot, 1, a1), unscore)],
  ];
  const scored = (await store.frame(id, 2))!.qa!;
  console.log(`shot QA in the worker at ${S}², median of ${reps} (ms): wall / process CPU`);
  for (const [name, t] of lines) console.log(`  ${name.padEnd(70)} ${t.wall.toFixed(1).padStart(6)} / ${t.cpu.toFixed(1).padStart(6)}`);
  console.log(`  (output PNG ${(pngs[0]!.length / 1e6).toFixed(2)} MB, sketch PNG ${(pngs[1]!.length / 1e3).toFixed(0)} kB)`);
  console.log(`  (scene pair: flicker mean ${scored.scores.flickerMean?.toFixed(2)}, measured ${scored.flickerMeasuredShare?.toFixed(2)})`);
} finally {
  objects.destroy();
  redis.disconnect();
  await redisServer.stop();
  await s3.stop();
  await rm(dir, { recursive: true, force: true });
}
