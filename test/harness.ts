/**
 * End-to-end harness: the real farm on one machine — redis-server, s3rver, the analytic pack,
 * the API and worker processes — each test file gets its own ports, folders and Redis prefix.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { buildAnalyticPack } from '@celfarm/model-kit';
import type { FramePage, FrameState, FrameView, ShotView } from '@celfarm/contract';
import { KeyStore, type Scope } from '@celfarm/tenancy';
import { freePort, startNodeProcess, startRedis, startS3, type NodeProcess, type RunningRedis, type RunningS3 } from '@celfarm/services';

export type FarmProcess = NodeProcess;

/** What the suites read from the API: the wire contract's types. */
export type { FramePage, FrameView, ShotView } from '@celfarm/contract';

export const ROOT = resolve(import.meta.dirname, '..');

export interface Farm {
  dir: string;
  redis: RunningRedis;
  s3: RunningS3;
  packDir: string;
  env: Record<string, string>;
  api: FarmProcess;
  apiUrl: string;
  workers: FarmProcess[];
  startWorker(id: string, extraEnv?: Record<string, string>): Promise<FarmProcess>;
  stop(): Promise<void>;
}

export interface FarmOptions {
  workers?: number;
  env?: Record<string, string>;
}

/** Starts Redis, S3, the API and `workers` worker processes; `stop()` tears everything down. */
export async function startFarm(opts: FarmOptions = {}): Promise<Farm> {
  const dir = await mkdtemp(join(tmpdir(), 'celfarm-e2e-'));
  const redis = await startRedis(join(dir, 'redis'));
  const s3 = await startS3(join(dir, 's3'), 'celfarm');
  const packDir = join(dir, 'pack');
  await buildAnalyticPack(packDir);
  const apiPort = await freePort();
  const env: Record<string, string> = {
    REDIS_URL: redis.url,
    REDIS_PREFIX: 'e2e',
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: 'celfarm',
    PACK_DIR: packDir,
    API_HOST: '127.0.0.1',
    API_PORT: String(apiPort),
    WORKER_THREADS: '1',
    LOCK_DURATION_MS: '4000',
    HEARTBEAT_MS: '500',
    ...opts.env,
  };
  const api = startNodeProcess('api', join(ROOT, 'apps/api/src/main.ts'), env, ROOT);
  const workers: FarmProcess[] = [];
  const farm: Farm = {
    dir,
    redis,
    s3,
    packDir,
    env,
    api,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    workers,
    async startWorker(id, extraEnv = {}) {
      // Port 0: the worker binds a free port (on loopback, its default) and prints where.
      const w = startNodeProcess(id, join(ROOT, 'apps/worker/src/main.ts'), { ...env, WORKER_ID: id, WORKER_METRICS_PORT: '0', ...extraEnv }, ROOT);
      workers.push(w);
      await w.waitFor(/worker .* ready/, 60_000);
      w.metricsUrl = /metrics on (http:\/\/\S+\/metrics)/.exec(await w.waitFor(/metrics on http:/))?.[1];
      return w;
    },
    async stop() {
      await Promise.all([api, ...workers].map((p) => p.kill('SIGKILL')));
      await farm.redis.stop();
      await farm.s3.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await api.waitFor(/api listening/, 60_000);
    for (let i = 0; i < (opts.workers ?? 1); i++) await farm.startWorker(`worker-${i + 1}`);
  } catch (e) {
    await farm.stop();
    throw e;
  }
  return farm;
}

/**
 * Runs `fn` with `processes` (a farm's workers, by default all) held by SIGSTOP, and lets them go
 * on (SIGCONT) after, whether `fn` returned or threw: work that would otherwise finish before a
 * test can see or act on it waits. Hold them briefly: a held worker renews no job lock.
 */
export async function whileHeld<T>(processes: readonly FarmProcess[], fn: () => Promise<T>): Promise<T> {
  for (const p of processes) p.child.kill('SIGSTOP');
  try {
    return await fn();
  } finally {
    for (const p of processes) p.child.kill('SIGCONT');
  }
}

/** Headers that authenticate as the API key `token`. */
export function authed(token: string, headers: Record<string, string> = {}): Record<string, string> {
  return { ...headers, authorization: `Bearer ${token}` };
}

/** Polls GET /v1/shots/:id (as the key `token`) until `done(shot)` or the timeout. */
export async function waitForShot(
  apiUrl: string,
  id: string,
  done: (shot: ShotView) => boolean,
  timeoutMs = 60_000,
  token?: string,
): Promise<ShotView> {
  const until = Date.now() + timeoutMs;
  let last: ShotView | undefined;
  while (Date.now() < until) {
    const r = await fetch(`${apiUrl}/v1/shots/${id}`, { headers: token ? authed(token) : {} });
    if (r.status === 401 || r.status === 403) throw new Error(`GET /v1/shots/${id}: ${r.status} ${await r.text()} (pass the API key to waitForShot)`);
    last = (await r.json()) as ShotView;
    if (done(last)) return last;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`shot ${id} did not reach the expected state in ${timeoutMs} ms; last: ${JSON.stringify(last)?.slice(0, 2000)}`);
}

/**
 * Every frame of a shot, in frame order, from the pages of GET /v1/shots/:id/frames (as the key
 * `token`); `state` keeps only frames in those states.
 */
export async function shotFrames(apiUrl: string, id: string, token?: string, opts: { state?: FrameState[]; limit?: number } = {}): Promise<FrameView[]> {
  const frames: FrameView[] = [];
  let cursor: string | null | undefined;
  do {
    const query = new URLSearchParams({
      ...(opts.state ? { state: opts.state.join(',') } : {}),
      ...(opts.limit ? { limit: String(opts.limit) } : {}),
      ...(cursor ? { cursor } : {}),
    });
    const r = await fetch(`${apiUrl}/v1/shots/${id}/frames?${query}`, { headers: token ? authed(token) : {} });
    if (!r.ok) throw new Error(`GET /v1/shots/${id}/frames?${query}: ${r.status} ${await r.text()}`);
    const page = (await r.json()) as FramePage;
    frames.push(...page.frames);
    cursor = page.next;
  } while (cursor);
  return frames;
}

/** A shot's frames that are not completed, with their errors: the message of an assertion that expected them all done. */
export async function unfinishedFrames(apiUrl: string, id: string, token?: string): Promise<string> {
  const frames = await shotFrames(apiUrl, id, token, { state: ['waiting', 'active', 'failed', 'cancelled'] });
  return JSON.stringify(frames.map((f) => [f.frame, f.state, f.error]));
}

/** multipart body for POST /v1/shots; frames are sent as `00001.png`, … unless `frameNames` names them. */
export function shotForm(request: unknown, files: { reference?: Uint8Array; background?: Uint8Array; frames: Uint8Array[]; frameNames?: string[] }): FormData {
  const form = new FormData();
  form.append('request', JSON.stringify(request));
  if (files.reference) form.append('reference', new Blob([files.reference], { type: 'image/png' }), 'reference.png');
  if (files.background) form.append('background', new Blob([files.background], { type: 'image/png' }), 'background.png');
  files.frames.forEach((f, i) => form.append('frames', new Blob([f], { type: 'image/png' }), files.frameNames?.[i] ?? `${String(i + 1).padStart(5, '0')}.png`));
  return form;
}

/**
 * Creates an API key for `project` directly in the farm's Redis (as the admin command does) and
 * returns its token, for `Authorization: Bearer <token>`.
 */
export async function createApiKey(farm: Farm, project = 'demo', scopes: Scope[] = ['submit', 'read', 'admin'], name = 'e2e'): Promise<string> {
  const redis = new Redis(farm.redis.url);
  try {
    const { token } = await new KeyStore(redis, farm.env.REDIS_PREFIX).create(project, name, scopes);
    return token;
  } finally {
    redis.disconnect();
  }
}
