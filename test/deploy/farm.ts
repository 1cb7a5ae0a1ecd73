/**
 * A farm of containers for the deploy suites: Redis and S3 stand-ins, the API image and CPU-worker
 * images, all on the host network with free ports, the analytic pack served from S3. Also the
 * checks a studio cares about: a shot completes with the pack's expected colours.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { buildAnalyticPack } from '@celfarm/model-kit';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { freePort, until } from '@celfarm/services';
import { authed, shotForm, shotFrames, unfinishedFrames, waitForShot, type FrameView, type ShotView } from '../harness.ts';
import { ContainerSet, IMAGES, log, podman, uploadFolder, waitForHttp } from './podman.ts';

export const PACK_PREFIX = 'packs/analytic';

/** Builds the analytic pack in a temporary folder and uploads it to S3 under PACK_PREFIX. */
export async function publishAnalyticPack(s3Endpoint: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'celfarm-deploy-pack-'));
  try {
    await buildAnalyticPack(join(dir, 'analytic'));
    const n = await uploadFolder(s3Endpoint, 'celfarm', join(dir, 'analytic'), PACK_PREFIX);
    log(`uploaded the analytic pack (${n} files) to s3://celfarm/${PACK_PREFIX}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface ContainerFarm {
  set: ContainerSet;
  redisUrl: string;
  s3Endpoint: string;
  apiUrl: string;
  apiPort: number;
  /** The farm environment every service container gets. */
  env: Record<string, string>;
  token: string;
  workers: Map<string, { container: string; metricsPort: number }>;
  startWorker(id: string, extraEnv?: Record<string, string>): Promise<string>;
}

/** Starts Redis, S3, the API and `workers` CPU workers as containers; publishes the pack; makes a key. */
export async function startContainerFarm(runId: string, workers: number, extraEnv: Record<string, string> = {}): Promise<ContainerFarm> {
  const set = new ContainerSet(runId);
  const [redisPort, s3Port, apiPort] = [await freePort(), await freePort(), await freePort()];
  await set.start('redis', {
    image: IMAGES.redis,
    args: ['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction', '--save', ''],
  });
  await set.start('s3', { image: IMAGES.s3, args: ['--port', String(s3Port), '--configure-bucket', 'celfarm', '--silent'] });
  const s3Endpoint = `http://127.0.0.1:${s3Port}`;
  await until('the S3 stand-in', async () => (await fetch(`${s3Endpoint}/celfarm`).catch(() => null))?.ok, { timeoutMs: 60_000, intervalMs: 200 });
  await publishAnalyticPack(s3Endpoint);

  const env: Record<string, string> = {
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    REDIS_PREFIX: 'deploy',
    S3_ENDPOINT: s3Endpoint,
    S3_BUCKET: 'celfarm',
    PACK_S3_PREFIX: PACK_PREFIX,
    ...extraEnv,
  };
  await set.start('api', { image: IMAGES.api, env: { ...env, API_PORT: String(apiPort) } });
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  await waitForHttp(`${apiUrl}/readyz`, 120_000, () => set.logs('api'));
  // The compiled admin command, inside the API container, prints the token alone on stdout.
  const token = (await podman(['exec', set.name('api'), 'node', 'apps/api/dist/server/admin.mjs', 'keys', 'create', '--project', 'demo', '--name', 'deploy', '--scopes', 'submit,read,admin'])).stdout.trim();
  assert.match(token, /^cf_/);

  const farm: ContainerFarm = {
    set,
    redisUrl: env.REDIS_URL!,
    s3Endpoint,
    apiUrl,
    apiPort,
    env,
    token,
    workers: new Map(),
    async startWorker(id, more = {}) {
      const metricsPort = await freePort();
      const container = await set.start(id, {
        image: IMAGES.workerCpu,
        env: { ...env, WORKER_ID: id, WORKER_METRICS_PORT: String(metricsPort), WORKER_THREADS: '1', HEARTBEAT_MS: '1000', ...more },
        volumes: [`${set.name('packs')}:/var/cache/celfarm/packs`],
      });
      farm.workers.set(id, { container, metricsPort });
      return container;
    },
  };
  await set.volume('packs');
  for (let i = 1; i <= workers; i++) await farm.startWorker(`worker-${i}`);
  await waitForWorkers(farm, [...farm.workers.keys()]);
  return farm;
}

/** Waits until GET /v1/workers lists every id in `ids`. */
export async function waitForWorkers(farm: ContainerFarm, ids: string[], timeoutMs = 120_000): Promise<void> {
  try {
    await until(
      `workers ${ids.join(', ')} in /v1/workers`,
      async () => {
        const r = await fetch(`${farm.apiUrl}/v1/workers`, { headers: authed(farm.token) });
        if (!r.ok) return false;
        const body = (await r.json()) as { workers?: { id: string }[] } | { id: string }[];
        const list = Array.isArray(body) ? body : (body.workers ?? []);
        return ids.every((id) => list.some((w) => w.id === id));
      },
      { timeoutMs, intervalMs: 500, retryErrors: true },
    );
  } catch (e) {
    const logs = await Promise.all(ids.map(async (id) => `--- ${id}\n${await farm.set.logs(id, 30)}`));
    throw new Error(`${(e as Error).message}\n${logs.join('\n')}`);
  }
}

export const SIZE = 128;

/** Generated line-art frames and a red/grey reference (the analytic pack colours from it). */
export async function sampleShot(frames: number, size = SIZE) {
  const sketches = await Promise.all(Array.from({ length: frames }, (_, i) => encodePng(sketchFrame(size, size, i, frames).image)));
  const reference = await encodePng(halfImage(size, size, COLOURS.red, COLOURS.grey));
  return { sketches, reference, circles: Array.from({ length: frames }, (_, i) => sketchFrame(size, size, i, frames).circle) };
}

export async function submitShot(apiUrl: string, token: string, settings: Record<string, unknown>, files: Parameters<typeof shotForm>[1]): Promise<string> {
  const r = await fetch(`${apiUrl}/v1/shots`, { method: 'POST', body: shotForm({ project: 'demo', settings }, files), headers: authed(token) });
  const body = (await r.json()) as { id: string };
  assert.equal(r.status, 201, JSON.stringify(body));
  return body.id;
}

export const waitShot = (apiUrl: string, token: string, id: string, done: (s: ShotView) => boolean, timeoutMs = 120_000) =>
  waitForShot(apiUrl, id, done, timeoutMs, token);

/** RGB of one pixel of an output, fetched through the API with the key. */
export async function pixel(apiUrl: string, token: string, url: string, x: number, y: number): Promise<number[]> {
  const res = await fetch(new URL(url, apiUrl), { headers: authed(token) });
  assert.equal(res.status, 200, `GET ${url}`);
  const { data, info } = await sharp(Buffer.from(await res.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
  const i = (Math.round(y) * info.width + Math.round(x)) * info.channels;
  return [data[i]!, data[i + 1]!, data[i + 2]!];
}

/**
 * Submits a 4-frame 128² shot and asserts what the studio sees: completed, every frame's circle in
 * the reference's red and its background in the reference's grey (the analytic pack's behaviour).
 */
export async function assertColorizesShot(apiUrl: string, token: string): Promise<{ shot: ShotView; frames: FrameView[] }> {
  const { sketches, reference, circles } = await sampleShot(4);
  const id = await submitShot(apiUrl, token, { mode: 'background', steps: 8, guidanceScale: 1, seed: 5, width: SIZE, height: SIZE }, { reference, frames: sketches });
  const shot = await waitShot(apiUrl, token, id, (s) => s.state === 'completed' || s.state === 'failed');
  assert.equal(shot.state, 'completed', JSON.stringify(shot.error) ?? (await unfinishedFrames(apiUrl, id, token)));
  const frames = await shotFrames(apiUrl, id, token);
  for (const [i, f] of frames.entries()) {
    assert.ok(f.outputUrl, `frame ${f.frame} has an output URL`);
    const inside = await pixel(apiUrl, token, f.outputUrl!, circles[i]!.cx, circles[i]!.cy);
    const corner = await pixel(apiUrl, token, f.outputUrl!, 6, 6);
    assert.ok(inside[0]! > 240 && inside[1]! < 15 && inside[2]! < 15, `frame ${f.frame} inside ${inside}`);
    assert.ok(corner.every((v) => Math.abs(v - 153) <= 3), `frame ${f.frame} corner ${corner}`);
  }
  return { shot, frames };
}
