/**
 * Test farm: a real redis-server and s3rver, the analytic pack built into a temp folder, the
 * pipeline host, and a FarmWorker with its BullMQ workers in this process. Shots are submitted
 * the way the API does: shot + frame records, input objects, then the prepare job.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { FarmQueues, frameSeed, newShotId, ShotStore, type FrameRecord, type ShotRecord } from '@celfarm/jobs';
import { createMetrics, type FarmMetrics } from '@celfarm/metrics';
import { buildAnalyticPack } from '@celfarm/model-kit';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { decodeImage, encodePng, PipelineHost, resolveSettings, type PackManifest, type Planar } from '@celfarm/pipeline';
import { startRedis, startS3, type RunningRedis, type RunningS3, until } from '@celfarm/services';
import { S3ObjectStore, shotKeys } from '@celfarm/storage';
import { FarmWorker, type FarmWorkerOptions } from '../src/farm-worker.ts';
import { readPackManifest } from '@celfarm/pipeline';

const readManifest = async (dir: string) => (await readPackManifest({ dir })).manifest;
import { createFollowUps, createProcessors } from '../src/processors.ts';
import { startQueueWorkers } from '../src/queue-workers.ts';

export const BUCKET = 'celfarm';
export const SIZE = 128;

export interface Services {
  dir: string;
  redis: RunningRedis;
  s3: RunningS3;
  objects: S3ObjectStore;
  stop(): Promise<void>;
}

export async function startServices(): Promise<Services> {
  const dir = await mkdtemp(join(tmpdir(), 'celfarm-worker-'));
  const redis = await startRedis(join(dir, 'redis'));
  const s3 = await startS3(join(dir, 's3'), BUCKET);
  const objects = new S3ObjectStore({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    bucket: BUCKET,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    forcePathStyle: true,
  });
  return {
    dir,
    redis,
    s3,
    objects,
    async stop() {
      objects.destroy();
      await redis.stop();
      await s3.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface TestFarm extends Services {
  prefix: string;
  objectPrefix: string;
  packDir: string;
  manifest: PackManifest;
  host: PipelineHost;
  records: Redis;
  store: ShotStore;
  queues: FarmQueues;
  metrics: FarmMetrics;
  farm: FarmWorker;
  workers: Worker[];
  lines: string[];
  /** A FarmWorker over the same ports with its own (empty) context memory and metrics. */
  freshWorker(overrides?: Partial<FarmWorkerOptions>): FarmWorker;
}

export async function startTestFarm(prefix: string, options: Partial<FarmWorkerOptions> = {}): Promise<TestFarm> {
  const services = await startServices();
  const packDir = join(services.dir, 'pack');
  await buildAnalyticPack(packDir);
  const manifest = await readManifest(packDir);
  const host = new PipelineHost({ packDir, intraOpThreads: 1 });
  await host.ready;
  const records = new Redis(services.redis.url);
  const bull = new Redis(services.redis.url, { maxRetriesPerRequest: null });
  const store = new ShotStore(records, prefix);
  const queues = new FarmQueues({ connection: bull, prefix, frameAttempts: 2, backoffMs: 50 });
  const metrics = createMetrics('worker', queues);
  const lines: string[] = [];
  const objectPrefix = 'farm';
  const base = {
    workerId: 'test-worker',
    store,
    objects: services.objects,
    queues,
    host,
    manifest,
    objectPrefix,
    maxPixels: 4096 * 4096,
    log: (l: string) => lines.push(l),
    cancelCheckMs: 25,
    ...options,
  };
  const farm = new FarmWorker({ ...base, metrics });
  const workers = startQueueWorkers(createProcessors(farm), {
    connection: bull,
    prefix,
    lockDuration: 30_000,
    name: 'test-worker',
    followUps: createFollowUps(farm, queues),
  });
  return {
    ...services,
    prefix,
    objectPrefix,
    packDir,
    manifest,
    host,
    records,
    store,
    queues,
    metrics,
    farm,
    workers,
    lines,
    freshWorker: (overrides = {}) => new FarmWorker({ ...base, metrics: createMetrics('worker'), ...overrides }),
    async stop() {
      await Promise.all(workers.map((w) => w.close()));
      await queues.close();
      await host.close();
      records.disconnect();
      bull.disconnect();
      await services.stop();
    },
  };
}

export interface ShotSpec {
  project?: string;
  /** The request's settings: resolved against the pack as the API does at submit. */
  settings: Record<string, unknown>;
  seed?: number;
  frames: Uint8Array[];
  reference?: Uint8Array;
  background?: Uint8Array;
  failedFrameShare?: number;
  /** Skip uploading the reference (a shot whose reference object is missing). */
  withoutReferenceObject?: boolean;
}

export interface Submitted {
  shot: ShotRecord;
  reference: Uint8Array;
}

type ShotPorts = Pick<TestFarm, 'store' | 'objects' | 'objectPrefix' | 'manifest'>;

/** Submits a shot as the API does: records, input objects, then the prepare job. */
export async function submitShot(f: ShotPorts & Pick<TestFarm, 'queues'>, spec: ShotSpec): Promise<Submitted> {
  const submitted = await createShot(f, spec);
  await f.queues.enqueuePrepare({ shotId: submitted.shot.id, project: submitted.shot.project }, submitted.shot.priority);
  return submitted;
}

/**
 * A shot whose frames a test renders itself: records and input objects as submitShot leaves
 * them, the shot `running`, and no job queued (so no queue worker takes its frames).
 */
export async function stageShot(f: ShotPorts, spec: ShotSpec): Promise<Submitted> {
  const created = await createShot(f, spec);
  return { ...created, shot: (await f.store.update(created.shot.id, { state: 'running' }))! };
}

/** The shot's input objects, then its records (which announce it). */
async function createShot(f: ShotPorts, spec: ShotSpec): Promise<Submitted> {
  const id = newShotId();
  const project = spec.project ?? 'demo';
  const seed = spec.seed ?? 7;
  // As the API resolves a submit: against the pack, the output size from the first frame when none is asked.
  const first = await decodeImage(spec.frames[0]!, 'frames[0]', { maxPixels: 1 << 26 }).catch(() => undefined);
  const { settings, warnings } = resolveSettings({ ...spec.settings, seed }, f.manifest, {
    background: spec.background !== undefined,
    frameSize: first && { width: first.width, height: first.height },
  });
  const keys = shotKeys(f.objectPrefix, project, id);
  const reference = spec.reference ?? (await referencePng());
  const now = new Date().toISOString();
  const shot: ShotRecord = {
    id,
    project,
    state: 'queued',
    createdAt: now,
    updatedAt: now,
    settings,
    warnings,
    seed,
    priority: 50,
    pack: { id: f.manifest.id, version: f.manifest.version },
    frameCount: spec.frames.length,
    inputs: {
      frames: spec.frames.map((_, i) => keys.frameInput(i + 1)),
      reference: keys.reference,
      background: spec.background ? keys.background : undefined,
    },
    failedFrameShare: spec.failedFrameShare ?? 0,
    awaitingUploads: false,
    round: 0,
  };
  const frames: FrameRecord[] = spec.frames.map((_, i) => ({ frame: i + 1, state: 'waiting', attempts: 0, seed: frameSeed(seed, i + 1) }));
  await Promise.all(spec.frames.map((bytes, i) => f.objects.put(keys.frameInput(i + 1), bytes, 'image/png')));
  if (!spec.withoutReferenceObject) await f.objects.put(keys.reference, reference, 'image/png');
  if (spec.background) await f.objects.put(keys.background, spec.background, 'image/png');
  await f.store.create(shot, frames);
  return { shot, reference };
}

export const referencePng = async (): Promise<Uint8Array> => encodePng(halfImage(SIZE, SIZE, COLOURS.red, COLOURS.grey));
export const sketchPng = async (index: number, count: number): Promise<Uint8Array> => encodePng(sketchFrame(SIZE, SIZE, index, count).image);
export const sketchPngs = (count: number): Promise<Uint8Array[]> => Promise.all(Array.from({ length: count }, (_, i) => sketchPng(i, count)));

/** Polls `probe` until it returns a truthy value. */
export function waitFor<T>(probe: () => Promise<T | null | undefined | false>, what: string, timeoutMs = 30_000): Promise<T> {
  return until(what, probe, { timeoutMs });
}

export async function waitForShot(store: ShotStore, id: string, states: ShotRecord['state'][], timeoutMs = 30_000): Promise<ShotRecord> {
  return waitFor(async () => {
    const s = await store.get(id);
    return s && states.includes(s.state) ? s : null;
  }, `shot ${id} to become ${states.join('|')}`, timeoutMs);
}

export async function decodePng(bytes: Uint8Array): Promise<Planar> {
  return decodeImage(bytes, 'output', { maxPixels: 1 << 26 });
}

/** Mean RGB over a (2·half+1)² window centred at (x, y). */
export function rgbAt(img: Planar, x: number, y: number, half = 2): number[] {
  const out = [0, 0, 0];
  let n = 0;
  for (let yy = y - half; yy <= y + half; yy++) {
    for (let xx = x - half; xx <= x + half; xx++) {
      for (let c = 0; c < 3; c++) out[c]! += img.data[(c * img.height + yy) * img.width + xx]!;
      n++;
    }
  }
  return out.map((v) => v / n);
}

export function assertClose(actual: number[], expected: number[], tol: number, what: string): void {
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i]! - expected[i]!) <= tol)) {
      throw new Error(`${what}: got [${actual.map((v) => v.toFixed(4))}], expected [${expected.map((v) => v.toFixed(4))}] (±${tol})`);
    }
  }
}
