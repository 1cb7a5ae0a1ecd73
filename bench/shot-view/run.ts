/**
 * Shot view bench: what one poll of `GET /v1/shots/:id` costs for a long shot — bytes and time —
 * and what reading its frames from `GET /v1/shots/:id/frames` costs. Real redis-server and
 * s3rver, the API in this process, a shot of `--frames` frames (default 2,000) all completed, so
 * every frame has a sketch, an output and a preview to link to; S3_PRESIGN=always, so the links
 * are presigned store URLs as with a real S3.
 *
 *   node --import tsx bench/shot-view/run.ts [--frames 2000] [--runs 30] [--before DIR]
 *
 * `--before DIR` measures another checkout of the repository the same way, first, and prints
 * both side by side: e.g. the commit before the frames were paged (its shot view carried every
 * frame with three URLs), exported with node_modules links (bench/README.md shows how). Each
 * checkout is measured in a child process started in it, so that its own tsconfig applies.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { Redis } from 'ioredis';
import { buildAnalyticPack } from '@celfarm/model-kit/analytic';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { startRedis, startS3 } from '@celfarm/services';
import { S3ObjectStore } from '@celfarm/storage';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '2000' },
    runs: { type: 'string', default: '30' },
    before: { type: 'string' },
    /** Internal: measure the checkout in the working directory and write the result to this file. */
    'measure-to': { type: 'string' },
  },
});
const FRAMES = Number(values.frames);
const RUNS = Number(values.runs);
const ROOT = resolve(import.meta.dirname, '../..');
const BUCKET = 'celfarm';
const PROJECT = 'bench';

interface Timing {
  bytes: number;
  medianMs: number;
  p90Ms: number;
}

interface Measured {
  tree: string;
  view: Timing;
  /** Present where the tree pages frames. */
  firstPage?: Timing;
  allPages?: Timing & { requests: number };
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

/** `runs` sequential calls of `call` after three warm-ups: bytes of the last, median and p90 time. */
async function time(runs: number, call: () => Promise<number>): Promise<Timing> {
  for (let i = 0; i < 3; i++) await call();
  const ms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    bytes = await call();
    ms.push(performance.now() - t0);
  }
  return { bytes, medianMs: quantile(ms, 0.5), p90Ms: quantile(ms, 0.9) };
}

/** The modules of the checkout at `root` that the bench drives: its API, config, shot store and key store. */
async function modulesOf(root: string) {
  const load = (path: string) => import(pathToFileURL(join(root, path)).href);
  const [app, config, jobs, tenancy] = await Promise.all([
    load('apps/api/src/app.ts'),
    load('libs/config/src/index.ts'),
    load('libs/jobs/src/index.ts'),
    load('libs/tenancy/src/index.ts'),
  ]);
  return {
    createApp: app.createApp as (config: unknown, opts: { logger: false }) => Promise<{ listen(o: object): Promise<unknown>; getUrl(): Promise<string>; close(): Promise<void> }>,
    loadConfig: config.loadConfig as (env: Record<string, string>) => unknown,
    ShotStore: jobs.ShotStore as new (redis: Redis, prefix: string) => {
      update(id: string, patch: object): Promise<unknown>;
      setFrame(id: string, frame: number, patch: object): Promise<unknown>;
    },
    KeyStore: tenancy.KeyStore as new (redis: Redis, prefix: string) => { create(project: string, name: string, scopes: string[]): Promise<{ token: string }> },
  };
}

async function measure(root: string, label: string): Promise<Measured> {
  const m = await modulesOf(root);
  const dir = await mkdtemp(join(tmpdir(), 'celfarm-shot-view-'));
  const [redisServer, s3] = await Promise.all([startRedis(join(dir, 'redis')), startS3(join(dir, 's3'), BUCKET)]);
  const redis = new Redis(redisServer.url);
  const objects = new S3ObjectStore({ endpoint: s3.endpoint, region: 'us-east-1', bucket: BUCKET, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
  let app: Awaited<ReturnType<typeof m.createApp>> | undefined;
  try {
    await buildAnalyticPack(join(dir, 'pack'));
    const prefix = 'bench';
    const config = m.loadConfig({
      REDIS_URL: redisServer.url,
      REDIS_PREFIX: prefix,
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: BUCKET,
      S3_PRESIGN: 'always',
      PACK_DIR: join(dir, 'pack'),
      MAX_FRAMES: String(FRAMES),
      RATE_LIMIT_PER_SECOND: '100000',
    });
    app = await m.createApp(config, { logger: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    const { token } = await new m.KeyStore(redis, prefix).create(PROJECT, 'bench', ['submit', 'read']);
    const headers = { authorization: `Bearer ${token}` };

    // The shot: FRAMES sketches under a library prefix, submitted by prefix, then every frame completed.
    const lib = `projects/${PROJECT}/library/sc010/`;
    const sketch = await encodePng(sketchFrame(64, 64).image);
    await objects.put(`${lib}ref/reference.png`, await encodePng(halfImage(64, 64, COLOURS.red, COLOURS.grey)), 'image/png');
    for (let i = 0; i < FRAMES; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, FRAMES - i) }, (_, k) => objects.put(`${lib}frames/sc010_${String(i + k + 1).padStart(5, '0')}.png`, sketch, 'image/png')));
    }
    const submitted = await fetch(`${base}/v1/shots`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ settings: { steps: 4, width: 64, height: 64 }, reference: { key: `${lib}ref/reference.png` }, frames: { prefix: `${lib}frames/` } }),
    });
    const shot = (await submitted.json()) as { id: string; frameCount: number };
    if (submitted.status !== 201 || shot.frameCount !== FRAMES) throw new Error(`submit: ${submitted.status} ${JSON.stringify(shot).slice(0, 300)}`);
    const store = new m.ShotStore(redis, prefix);
    await store.update(shot.id, { state: 'running' });
    for (let f = 1; f <= FRAMES; f++) {
      await store.setFrame(shot.id, f, { state: 'active', attempts: 1, worker: 'w1' });
      await store.setFrame(shot.id, f, { state: 'completed', output: `projects/${PROJECT}/shots/${shot.id}/outputs/${String(f).padStart(5, '0')}.png`, seconds: 1 });
    }

    const get = async (path: string): Promise<{ bytes: number; body: unknown }> => {
      const r = await fetch(`${base}${path}`, { headers });
      const buf = await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${Buffer.from(buf).toString('utf8').slice(0, 300)}`);
      return { bytes: buf.byteLength, body: JSON.parse(Buffer.from(buf).toString('utf8')) };
    };
    const view = await time(RUNS, async () => (await get(`/v1/shots/${shot.id}`)).bytes);
    const out: Measured = { tree: label, view };
    const paged = await fetch(`${base}/v1/shots/${shot.id}/frames`, { headers });
    await paged.arrayBuffer();
    if (paged.status === 200) {
      out.firstPage = await time(RUNS, async () => (await get(`/v1/shots/${shot.id}/frames`)).bytes);
      let requests = 0;
      out.allPages = {
        ...(await time(Math.max(3, Math.round(RUNS / 5)), async () => {
          let bytes = 0;
          let cursor: string | null = null;
          requests = 0;
          do {
            const page: { bytes: number; body: unknown } = await get(`/v1/shots/${shot.id}/frames?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
            bytes += page.bytes;
            requests++;
            cursor = (page.body as { next: string | null }).next;
          } while (cursor);
          return bytes;
        })),
        requests,
      };
    }
    return out;
  } finally {
    await app?.close();
    objects.destroy();
    redis.disconnect();
    await redisServer.stop();
    await s3.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

const kb = (b: number) => (b >= 1e6 ? `${(b / 1e6).toFixed(2)} MB` : `${(b / 1e3).toFixed(1)} kB`);
const row = (what: string, t: Timing) => `${what.padEnd(44)} ${kb(t.bytes).padStart(10)} ${t.medianMs.toFixed(1).padStart(10)} ${t.p90Ms.toFixed(1).padStart(8)}`;

/** Measures the checkout at `root` in a child process started there. */
async function measureIn(root: string, label: string): Promise<Measured> {
  const dir = await mkdtemp(join(tmpdir(), 'celfarm-shot-view-out-'));
  try {
    const out = join(dir, 'measured.json');
    const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--frames', String(FRAMES), '--runs', String(RUNS), '--measure-to', out];
    await promisify(execFile)(process.execPath, args, { cwd: root, timeout: 1_200_000, maxBuffer: 16 << 20 });
    return { ...(JSON.parse(await readFile(out, 'utf8')) as Measured), tree: label };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (values['measure-to']) {
  await writeFile(values['measure-to'], JSON.stringify(await measure(process.cwd(), process.cwd())));
  process.exit(0);
}

const results: Measured[] = [];
if (values.before) results.push(await measureIn(resolve(values.before), `before (${values.before})`));
results.push(await measureIn(ROOT, 'after (this checkout)'));

console.log(`\n${FRAMES} frames, all completed (sketch, output and preview each), S3_PRESIGN=always; ${RUNS} sequential GETs after 3 warm-ups`);
console.log(`${'request'.padEnd(44)} ${'bytes'.padStart(10)} ${'median ms'.padStart(10)} ${'p90 ms'.padStart(8)}`);
for (const r of results) {
  console.log(row(`GET /v1/shots/:id — ${r.tree}`, r.view));
  if (r.firstPage) console.log(row('GET /v1/shots/:id/frames (first page, 100)', r.firstPage));
  if (r.allPages) console.log(row(`all frames: ${r.allPages.requests} pages of 500`, r.allPages));
}
if (results.length === 2) {
  const [b, a] = results as [Measured, Measured];
  console.log(`shot view: ${(b.view.bytes / a.view.bytes).toFixed(0)}× fewer bytes, ${(b.view.medianMs / a.view.medianMs).toFixed(1)}× faster (median)`);
}
await mkdir(join(ROOT, 'bench/results'), { recursive: true });
await writeFile(join(ROOT, 'bench/results/shot-view.json'), JSON.stringify({ frames: FRAMES, runs: RUNS, results }, null, 2));
