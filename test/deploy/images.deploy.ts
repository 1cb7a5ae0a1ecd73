/**
 * The images, for real: builds the API and CPU-worker images (docker/Dockerfile) from the offline
 * stand-in base, starts Redis and S3 stand-ins, the API and two workers as containers, and checks
 * what an operator relies on: compiled JavaScript as a non-root user, healthchecks, a shot
 * colorized with the analytic pack's expected colours, and `podman stop` (SIGTERM) of a worker
 * mid-frame losing nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { S3ObjectStore, shotKeys } from '@celfarm/storage';
import { buildContext, buildImage, ensureImages, IMAGES, imageSize, log, mb, podman } from './podman.ts';
import { assertColorizesShot, sampleShot, startContainerFarm, submitShot, waitForWorkers, waitShot, type ContainerFarm } from './farm.ts';
import { authed, shotFrames, unfinishedFrames } from '../harness.ts';

const runId = `img${process.pid}`;

describe('container images', () => {
  let farm: ContainerFarm;
  before(async () => {
    const built = await ensureImages();
    log(`image builds (s): ${JSON.stringify(built)}`);
    farm = await startContainerFarm(runId, 2, { LOCK_DURATION_MS: '30000' });
    log('farm of containers up');
  });
  after(async () => {
    await farm?.set.removeAll();
  });

  it('are small, run compiled JavaScript as a non-root user, and carry no TypeScript runtime', async () => {
    const sizes = { api: await imageSize(IMAGES.api), workerCpu: await imageSize(IMAGES.workerCpu), base: await imageSize(IMAGES.base) };
    log(`image sizes: api ${mb(sizes.api)}, worker-cpu ${mb(sizes.workerCpu)} (base ${mb(sizes.base)}: app layers ${mb(sizes.api - sizes.base)} and ${mb(sizes.workerCpu - sizes.base)})`);
    assert.ok(sizes.api - sizes.base < 150e6, `api adds ${mb(sizes.api - sizes.base)} to its base`);
    assert.ok(sizes.workerCpu - sizes.base < 200e6, `worker-cpu adds ${mb(sizes.workerCpu - sizes.base)} to its base`);
    for (const short of ['api', 'worker-1']) {
      const c = farm.set.name(short);
      assert.equal((await podman(['exec', c, 'id', '-u'])).stdout.trim(), '1000', `${short} runs as node (uid 1000)`);
      const cmd = (await podman(['exec', c, 'cat', '/proc/1/cmdline'])).stdout.replace(/\0/g, ' ').trim();
      assert.match(cmd, /^node --enable-source-maps apps\/(api|worker)\/dist\/server\/main\.mjs$/, cmd);
      const ts = await podman(['exec', c, 'sh', '-c', 'find /app/apps -name "*.ts" -o -name "*.mts" | head -5; ls -d /app/node_modules/tsx /app/node_modules/typescript /app/node_modules/esbuild 2>/dev/null || true']);
      assert.equal(ts.stdout.trim(), '', `${short}: no TypeScript sources, tsx, typescript or esbuild in the image`);
      // The app files belong to root: the service user cannot change them.
      const w = await podman(['exec', c, 'sh', '-c', 'touch /app/package.json 2>&1 || echo read-only'], { allowFail: true });
      assert.match(w.stdout, /read-only|Permission denied/);
    }
  });

  it('pass their healthchecks', async () => {
    // A few tries each: the check starts node in the container, which a loaded machine can hold
    // past the check's own 3 s timeout once; a container that is unhealthy fails every try.
    for (const short of ['api', 'worker-1', 'worker-2']) {
      let r = await podman(['healthcheck', 'run', farm.set.name(short)], { allowFail: true });
      for (let attempt = 1; r.code !== 0 && attempt < 5; attempt++) {
        await new Promise((res) => setTimeout(res, 1000));
        r = await podman(['healthcheck', 'run', farm.set.name(short)], { allowFail: true });
      }
      assert.equal(r.code, 0, `${short} healthcheck: ${r.stdout}${r.stderr}`);
    }
    const ready = await fetch(`${farm.apiUrl}/readyz`);
    assert.equal(ready.status, 200);
    const dashboard = await fetch(`${farm.apiUrl}/`, { headers: { accept: 'text/html' } });
    assert.equal(dashboard.status, 200, 'the API image serves the dashboard');
    assert.match(await dashboard.text(), /<div id="root"|<script/);
  });

  it('colorize a shot with the reference colours', async () => {
    const t0 = Date.now();
    const { frames } = await assertColorizesShot(farm.apiUrl, farm.token);
    log(`4-frame shot completed in ${((Date.now() - t0) / 1000).toFixed(1)} s on workers ${[...new Set(frames.map((f) => f.worker))].join(', ')}`);
  });

  it('include a CUDA worker Dockerfile that builds and serves here without CUDA (stand-in bases, no CUDA provider: falls back to CPU)', async () => {
    // What cannot run here: NVIDIA's CUDA base (no registry) and the CUDA provider (NuGet). The
    // same Dockerfile builds with the stand-in as both bases and ORT_NODE_INSTALL=skip; its
    // worker then asks for cuda:0,cpu, finds no CUDA provider and reports cpu.
    const seconds = await buildImage(IMAGES.workerCudaShape, 'docker/worker-cuda.Dockerfile', {
      context: await buildContext(),
      args: { BUILD_BASE: IMAGES.base, CUDA_BASE: IMAGES.base, ORT_NODE_INSTALL: 'skip' },
    });
    log(`worker-cuda (shape) built in ${seconds.toFixed(1)} s, ${mb(await imageSize(IMAGES.workerCudaShape))}`);
    await farm.set.start('worker-cuda', {
      image: IMAGES.workerCudaShape,
      env: { ...farm.env, WORKER_ID: 'worker-cuda', WORKER_METRICS_PORT: '0', WORKER_THREADS: '1', HEARTBEAT_MS: '1000' },
    });
    try {
      assert.equal((await podman(['exec', farm.set.name('worker-cuda'), 'printenv', 'WORKER_PROVIDERS'])).stdout.trim(), 'cuda:0,cpu');
      await waitForWorkers(farm, ['worker-cuda']);
      const r = await fetch(`${farm.apiUrl}/v1/workers`, { headers: authed(farm.token) });
      const w = ((await r.json()) as { workers: { id: string; provider: string }[] }).workers.find((x) => x.id === 'worker-cuda');
      assert.equal(w?.provider, 'cpu', 'without the CUDA provider the worker runs on the CPU and says so');
    } finally {
      await podman(['stop', '-t', '30', farm.set.name('worker-cuda')], { allowFail: true });
    }
  });

  it('lose nothing when a worker is stopped (SIGTERM) mid-frame: it finishes its frames, exits 0', async () => {
    const { sketches, reference } = await sampleShot(4, 512);
    const id = await submitShot(farm.apiUrl, farm.token, { mode: 'vanilla', steps: 100, seed: 9, width: 1024, height: 1024, batchSize: 2 }, { reference, frames: sketches });
    const busy = await waitShot(farm.apiUrl, farm.token, id, (s) => s.active.some((f) => (f.step ?? 0) > 2 && !!f.worker), 120_000);
    const frame = busy.active.find((f) => (f.step ?? 0) > 2 && !!f.worker)!;
    const victim = frame.worker!;
    assert.ok(farm.workers.has(victim), `${victim} is one of ours`);
    log(`stopping ${victim} at frame ${frame.frame}, step ${frame.step}/${frame.steps}`);
    const t0 = Date.now();
    await podman(['stop', '-t', '300', farm.set.name(victim)], { timeoutMs: 320_000 });
    const stopSeconds = (Date.now() - t0) / 1000;
    const state = (await podman(['inspect', '--format', '{{.State.ExitCode}} {{.State.OOMKilled}}', farm.set.name(victim)])).stdout.trim();
    const logs = await farm.set.logs(victim, 20);
    log(`${victim} exited after ${stopSeconds.toFixed(1)} s: exit code/OOM ${state}`);
    assert.equal(state, '0 false', `the worker drained and exited 0 (not SIGKILLed); logs:\n${logs}`);
    assert.match(logs, /finishing the jobs in progress[\s\S]*stopped/);

    const done = await waitShot(farm.apiUrl, farm.token, id, (s) => s.state === 'completed' || s.state === 'failed', 300_000);
    assert.equal(done.state, 'completed', await unfinishedFrames(farm.apiUrl, id, farm.token));
    const finished = (await shotFrames(farm.apiUrl, id, farm.token)).find((f) => f.frame === frame.frame)!;
    assert.equal(finished.worker, victim, 'the stopped worker finished the frame it was sampling');
    assert.equal(finished.attempts, 1, 'no retry was needed');
    const store = new S3ObjectStore({ endpoint: farm.s3Endpoint, region: 'us-east-1', bucket: 'celfarm', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
    try {
      const outputs = await store.list(shotKeys('', 'demo', id).outputsPrefix);
      assert.equal(outputs.filter((o) => o.key.endsWith('.png')).length, 4, outputs.map((o) => o.key).join(', '));
    } finally {
      store.destroy();
    }
  });
});
