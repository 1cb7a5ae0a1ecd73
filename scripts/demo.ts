/**
 * `npm run demo`: the farm end to end on embedded defaults (scripts/demo.mjs has installed
 * redis-server when missing). Builds the analytic pack, starts Redis (AOF on, noeviction) and the
 * embedded S3 endpoint (s3rver) unless REDIS_URL / S3_ENDPOINT are set, starts the API and a
 * worker (their logs in <out>/logs/), writes the farm's connection details to .cache/demo/farm.env
 * (which the admin command reads), submits a generated 4-frame shot, follows its progress,
 * downloads the outputs and tells where everything is. `--keep` leaves the farm running (Ctrl-C
 * stops it) and prints what to export to use it from another shell.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { DEMO_FARM_ENV, freePort, removeFarmEnv, startNodeProcess, startRedis, startS3, writeFarmEnv, type NodeProcess } from '@celfarm/services';
import { KeyStore } from '@celfarm/tenancy';
import { Redis } from 'ioredis';

const root = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '4' },
    size: { type: 'string', default: '256' },
    mode: { type: 'string', default: 'full' },
    steps: { type: 'string', default: '20' },
    out: { type: 'string', default: 'out/demo' },
    keep: { type: 'boolean', default: false },
  },
});
const frames = Number(values.frames);
const size = Number(values.size);
const outDir = resolve(root, values.out!);
const env = process.env;
/** A path relative to the repository root, as the messages show it. */
const shown = (p: string) => relative(root, p) || '.';

async function main() {
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  process.once('SIGTERM', () => void stopAll().then(() => process.exit(143)));
  try {
    const built = spawnSync(process.execPath, ['--import', 'tsx', 'tools/model-kit/src/cli.ts', 'build', '--out', 'packs'], { cwd: root, stdio: 'inherit' });
    if (built.status !== 0) throw new Error('building the analytic pack failed');
    const state = join(root, '.cache', 'demo');

    let redisUrl = env.REDIS_URL;
    if (!redisUrl) {
      const redis = await startRedis(join(state, 'redis'));
      stops.push(redis.stop);
      redisUrl = redis.url;
      console.log(`redis-server on ${redis.url} (AOF on, maxmemory-policy noeviction)`);
    }
    // An API key for the demo project, straight in Redis (what `admin.ts keys create` does).
    const prefix = env.REDIS_PREFIX || 'celfarm';
    const keyRedis = new Redis(redisUrl);
    let token: string;
    try {
      ({ token } = await new KeyStore(keyRedis, prefix).create('demo', 'demo', ['submit', 'read', 'admin']));
    } finally {
      keyRedis.disconnect();
    }
    const auth = { authorization: `Bearer ${token}` };
    let s3Endpoint = env.S3_ENDPOINT;
    const bucket = env.S3_BUCKET ?? 'celfarm';
    if (!s3Endpoint) {
      const s3 = await startS3(join(state, 's3'), bucket);
      stops.push(s3.stop);
      s3Endpoint = s3.endpoint;
      console.log(`embedded S3 (s3rver) on ${s3.endpoint}, bucket ${bucket}`);
    }
    const apiPort = env.API_PORT ?? String(await freePort());
    const farmEnv: Record<string, string> = {
      REDIS_URL: redisUrl,
      S3_ENDPOINT: s3Endpoint,
      S3_BUCKET: bucket,
      PACK_DIR: env.PACK_DIR ?? join(root, 'packs', 'analytic'),
      API_PORT: apiPort,
      WORKER_METRICS_PORT: String(await freePort()),
    };
    const procs: NodeProcess[] = [];
    stops.push(() => Promise.all(procs.map((p) => p.kill('SIGTERM'))));
    // Each process's output goes to its log file (FARM_LOG=1 also prints it here, prefixed).
    const logs = { api: join(outDir, 'logs', 'api.log'), worker: join(outDir, 'logs', 'worker.log') };
    const api = startNodeProcess('api', join(root, 'apps/api/src/main.ts'), farmEnv, root, { logFile: logs.api });
    procs.push(api);
    await api.waitFor(/api listening/, 60_000).catch((e: unknown) => Promise.reject(new Error(`${String(e)}\n(the API's log: ${shown(logs.api)})`)));
    const worker = startNodeProcess('worker', join(root, 'apps/worker/src/main.ts'), { ...farmEnv, WORKER_ID: 'demo-worker-1' }, root, { logFile: logs.worker });
    procs.push(worker);
    await worker.waitFor(/worker .* ready/, 60_000).catch((e: unknown) => Promise.reject(new Error(`${String(e)}\n(the worker's log: ${shown(logs.worker)})`)));
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const workerMetrics = worker.output.map((l) => /metrics on (http:\/\/\S+\/metrics)/.exec(l)?.[1]).find(Boolean) ?? `http://127.0.0.1:${farmEnv.WORKER_METRICS_PORT}/metrics`;
    console.log(`API on ${apiUrl} (OpenAPI docs: ${apiUrl}/docs), worker demo-worker-1 ready (metrics: ${workerMetrics})`);
    console.log(`API key for project demo (scopes submit, read, admin): ${token}`);
    console.log(`dashboard: ${apiUrl}/ (sign in with this key)`);
    console.log(`logs: ${shown(logs.api)}, ${shown(logs.worker)} (FARM_LOG=1 also prints them here)`);

    // How another shell (and the admin command, when REDIS_URL is unset) reaches this farm.
    const farmFile = join(root, DEMO_FARM_ENV);
    const exports = {
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      S3_ENDPOINT: s3Endpoint,
      S3_BUCKET: bucket,
      CELFARM_API: apiUrl,
      CELFARM_KEY: token,
      CELFARM_PROJECT: 'demo',
      WORKER_METRICS_PORT: farmEnv.WORKER_METRICS_PORT!,
      CELFARM_DEMO_PID: String(process.pid),
    };
    await writeFarmEnv(farmFile, exports, [
      `the celfarm demo farm (npm run demo, pid ${process.pid}); removed when it stops. Load it with: . ${DEMO_FARM_ENV}`,
      `API ${apiUrl} (docs ${apiUrl}/docs, metrics ${apiUrl}/metrics); worker metrics ${workerMetrics}`,
      `logs: ${shown(logs.api)}, ${shown(logs.worker)}`,
    ]);
    stops.push(() => removeFarmEnv(farmFile));

    await mkdir(join(outDir, 'inputs', 'frames'), { recursive: true });
    await mkdir(join(outDir, 'outputs'), { recursive: true });
    const form = new FormData();
    form.append('request', JSON.stringify({ project: 'demo', settings: { mode: values.mode, steps: Number(values.steps), seed: 7, width: size, height: size } }));
    const reference = await encodePng(halfImage(size, size, COLOURS.red, COLOURS.grey));
    await writeFile(join(outDir, 'inputs', 'reference.png'), reference);
    form.append('reference', new Blob([reference], { type: 'image/png' }), 'reference.png');
    for (let i = 0; i < frames; i++) {
      const png = await encodePng(sketchFrame(size, size, i, frames).image);
      const name = `${String(i + 1).padStart(5, '0')}.png`;
      await writeFile(join(outDir, 'inputs', 'frames', name), png);
      form.append('frames', new Blob([png], { type: 'image/png' }), name);
    }
    const submitted = await fetch(`${apiUrl}/v1/shots`, { method: 'POST', body: form, headers: auth });
    const shot = (await submitted.json()) as { id: string; error?: unknown };
    if (submitted.status !== 201) throw new Error(`submit failed (${submitted.status}): ${JSON.stringify(shot)}`);
    console.log(`submitted shot ${shot.id} (${frames} frames, mode ${values.mode}); following it:`);

    type View = { state: string; progress: number; etaSeconds: number | null; frameCount: number; counts: Record<string, number>; active: { frame: number; step?: number; steps?: number }[]; error?: unknown };
    type Frame = { frame: number; state: string; output?: string; outputUrl?: string };
    let view: View;
    let lastLine = '';
    for (;;) {
      view = (await (await fetch(`${apiUrl}/v1/shots/${shot.id}`, { headers: auth })).json()) as View;
      const line = `  ${view.state.padEnd(9)} ${(view.progress * 100).toFixed(0).padStart(3)}%  ` +
        `${view.counts.completed}/${view.frameCount} done ` +
        view.active.map((f) => `#${f.frame}:${f.step ?? 0}/${f.steps ?? '?'}`).join(' ') +
        (view.etaSeconds !== null ? `  eta ${view.etaSeconds.toFixed(1)} s` : '');
      if (line !== lastLine) console.log(line);
      lastLine = line;
      if (['completed', 'failed', 'cancelled'].includes(view.state)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    if (view.state !== 'completed') throw new Error(`shot ended ${view.state}: ${JSON.stringify(view.error)}`);
    // The frames, with their output URLs, come in pages (at most 500 each).
    const done: Frame[] = [];
    for (let cursor: string | null = null; ; ) {
      const page = (await (await fetch(`${apiUrl}/v1/shots/${shot.id}/frames?limit=500${cursor ? `&cursor=${cursor}` : ''}`, { headers: auth })).json()) as { frames: Frame[]; next: string | null };
      done.push(...page.frames);
      if (!(cursor = page.next)) break;
    }
    for (const f of done) {
      // A path on the API (the embedded s3rver is not presigned) or a presigned URL: the key goes to the API only.
      const url = new URL(f.outputUrl!, `${apiUrl}/`);
      const res = await fetch(url, { headers: url.origin === apiUrl ? auth : {} });
      if (!res.ok) throw new Error(`downloading frame ${f.frame}: ${res.status}`);
      const bytes = Buffer.from(await res.arrayBuffer());
      await writeFile(join(outDir, 'outputs', `${String(f.frame).padStart(5, '0')}.png`), bytes);
    }
    console.log(`\nshot ${shot.id} completed.`);
    console.log(`  outputs (S3, bucket ${bucket}): ${done[0]!.output!.replace(/[^/]+$/, '')}`);
    console.log(`  outputs (downloaded):        ${join(outDir, 'outputs')}`);
    console.log(`  inputs:                      ${join(outDir, 'inputs')}`);
    console.log(`  shot:                        ${apiUrl}/v1/shots/${shot.id} (Authorization: Bearer ${token})`);
    console.log(`  dashboard:                   ${apiUrl}/ (sign in with this key)`);
    console.log(`  API docs:                    ${apiUrl}/docs`);
    console.log(`  metrics:                     ${apiUrl}/metrics (API), ${workerMetrics} (worker)`);
    console.log(`  logs:                        ${shown(logs.api)}, ${shown(logs.worker)} (FARM_LOG=1 also prints them here)`);
    if (values.keep) {
      console.log(`
the farm keeps running (--keep); Ctrl-C stops it. To use it from another shell (in ${root}):
  . ${DEMO_FARM_ENV}        # exports the lines below
  export REDIS_URL='${redisUrl}' REDIS_PREFIX='${prefix}'
  export CELFARM_API='${apiUrl}' CELFARM_KEY='${token}' CELFARM_PROJECT=demo
  npm run admin -- keys list --project demo        # the admin command finds this farm by itself
  tail -f ${shown(logs.api)} ${shown(logs.worker)}`);
      await new Promise(() => undefined);
    }
  } finally {
    await stopAll();
  }
}

main().catch((e: unknown) => {
  console.error(`demo failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
