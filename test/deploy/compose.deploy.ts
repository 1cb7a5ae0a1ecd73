/**
 * deploy/compose for real: docker-compose (Debian's) drives podman through its Docker API socket,
 * with compose.yaml as shipped plus test/deploy/compose.standin.yaml (the S3 service played by
 * s3rver); Redis and MinIO images swapped for local stand-ins through REDIS_IMAGE/MINIO_IMAGE,
 * ours for the images the suite built. The stack comes up on its own network (service names
 * resolve), a shot submitted through the published API port completes with the expected colours
 * on the two worker replicas, Redis runs with AOF and noeviction, the GPU and monitoring
 * profiles render.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { freePort, until } from '@celfarm/services';
import { authed } from '../harness.ts';
import { CONTAINERS_CONF, ensureHostTools, ensureImages, IMAGES, log, podman, pumpHealthchecks, ROOT, run, waitForHttp } from './podman.ts';
import { assertColorizesShot, publishAnalyticPack } from './farm.ts';

const project = `cfd${process.pid}`;

describe('deploy/compose', () => {
  let dir: string;
  let socket: string;
  let service: ChildProcess | undefined;
  let stopPump: (() => void) | undefined;
  let env: Record<string, string>;
  let apiUrl: string;
  let token: string;
  const compose = (args: string[], timeoutMs = 300_000) =>
    run('docker-compose', ['-p', project, '-f', 'compose.yaml', '-f', 'compose.standin.yaml', ...args], { cwd: join(dir, 'deploy/compose'), env, timeoutMs });

  before(async () => {
    // docker-compose drives podman's Docker API; dnsname lets containers resolve service names.
    await ensureHostTools(['docker-compose', { pkg: 'golang-github-containernetworking-plugin-dnsname', path: '/usr/lib/cni/dnsname' }]);
    await ensureImages();
    // compose.yaml and what it mounts, copied with the repository's relative layout; env files
    // from the examples with test passwords (the examples' own values would do as well).
    dir = await mkdtemp(join(ROOT, '.cache/deploy/compose-'));
    await mkdir(join(dir, 'deploy'), { recursive: true });
    for (const d of ['compose', 'prometheus', 'grafana']) {
      if (existsSync(join(ROOT, 'deploy', d))) await cp(join(ROOT, 'deploy', d), join(dir, 'deploy', d), { recursive: true });
    }
    await cp(join(ROOT, 'test/deploy/compose.standin.yaml'), join(dir, 'deploy/compose/compose.standin.yaml'));
    for (const f of ['celfarm', 'secrets', 'datastores']) {
      await cp(join(dir, `deploy/compose/${f}.env.example`), join(dir, `deploy/compose/${f}.env`));
    }
    await writeFile(join(dir, 'deploy/compose/celfarm.env'), 'PACK_S3_PREFIX=packs/analytic\nWORKER_THREADS=1\n', { flag: 'a' });
    await writeFile(join(dir, 'deploy/compose/secrets.env'), 'REDIS_URL=redis://:change-me-redis@redis:6379\nS3_ACCESS_KEY_ID=S3RVER\nS3_SECRET_ACCESS_KEY=S3RVER\n');

    socket = join(dir, 'podman.sock');
    service = spawn('podman', ['system', 'service', '--time=0', `unix://${socket}`], { env: { ...process.env, CONTAINERS_CONF }, stdio: 'ignore' });
    // Answering, not only bound: docker-compose's first call goes to a service that is up.
    const ping = () =>
      new Promise<boolean>((resolve) => {
        const req = request({ socketPath: socket, path: '/_ping', timeout: 2000 }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        });
        req.on('error', () => resolve(false));
        req.on('timeout', () => req.destroy());
        req.end();
      });
    await until('the podman API socket', async () => existsSync(socket) && (await ping()), { timeoutMs: 30_000, intervalMs: 100 });
    const [apiPort, s3Port] = [await freePort(), await freePort()];
    apiUrl = `http://127.0.0.1:${apiPort}`;
    env = {
      DOCKER_HOST: `unix://${socket}`,
      CONTAINERS_CONF,
      REDIS_IMAGE: IMAGES.redis,
      MINIO_IMAGE: IMAGES.s3,
      CELFARM_API_IMAGE: IMAGES.api,
      CELFARM_WORKER_IMAGE: IMAGES.workerCpu,
      CELFARM_API_PORT: String(apiPort),
      CELFARM_S3_PORT: String(s3Port),
      CELFARM_CPU_WORKERS: '2',
    };
    const t0 = Date.now();
    stopPump = pumpHealthchecks(`label=com.docker.compose.project=${project}`);
    await compose(['up', '-d', 'redis', 'minio']);
    await waitForHttp(`http://127.0.0.1:${s3Port}/celfarm`, 60_000);
    await publishAnalyticPack(`http://127.0.0.1:${s3Port}`);
    await compose(['up', '-d']);
    await waitForHttp(`${apiUrl}/readyz`, 180_000, async () => (await podman(['logs', '--tail', '40', `${project}_api_1`], { allowFail: true })).stderr);
    log(`compose stack up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    token = (await podman(['exec', `${project}_api_1`, 'node', 'apps/api/dist/server/admin.mjs', 'keys', 'create', '--project', 'demo', '--name', 'compose', '--scopes', 'submit,read,admin'])).stdout.trim();
    assert.match(token, /^cf_/);
  });

  after(async () => {
    stopPump?.();
    if (env) await compose(['down', '-v', '--timeout', '5'], 180_000).catch((e: unknown) => log(`compose down: ${(e as Error).message.slice(0, 400)}`));
    // Whatever compose left (it labels its containers with the project).
    const left = (await podman(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], { allowFail: true })).stdout.split('\n').filter(Boolean);
    if (left.length) await podman(['rm', '-f', '-v', '-t', '0', ...left], { allowFail: true });
    service?.kill('SIGTERM');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs the stack: both worker replicas serve, a shot completes with the expected colours', async () => {
    await until(
      'two workers registered',
      async () => {
        const r = await fetch(`${apiUrl}/v1/workers`, { headers: authed(token) });
        const body = (await r.json()) as { workers: { id: string }[] };
        return body.workers.length === 2 ? body.workers : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500, retryErrors: true },
    );
    const t0 = Date.now();
    const { frames } = await assertColorizesShot(apiUrl, token);
    log(`compose: 4-frame shot completed in ${((Date.now() - t0) / 1000).toFixed(1)} s on ${[...new Set(frames.map((f) => f.worker))].join(', ')}`);
  });

  it('runs Redis with AOF (fsync always), noeviction and a password; workers get the long grace period', async () => {
    const cli = (...args: string[]) => podman(['exec', '-e', 'REDISCLI_AUTH=change-me-redis', `${project}_redis_1`, 'redis-cli', ...args]);
    assert.deepEqual((await cli('config', 'get', 'appendonly')).stdout.trim().split('\n'), ['appendonly', 'yes']);
    assert.deepEqual((await cli('config', 'get', 'appendfsync')).stdout.trim().split('\n'), ['appendfsync', 'always']);
    assert.deepEqual((await cli('config', 'get', 'maxmemory-policy')).stdout.trim().split('\n'), ['maxmemory-policy', 'noeviction']);
    const noAuth = await podman(['exec', `${project}_redis_1`, 'redis-cli', 'ping'], { allowFail: true });
    assert.match(noAuth.stdout + noAuth.stderr, /NOAUTH/);
    const stopTimeout = (await podman(['inspect', '--format', '{{.Config.StopTimeout}}', `${project}_worker_1`])).stdout.trim();
    assert.equal(stopTimeout, '600', 'stop_grace_period 10m reaches the worker containers');
    // Only the API's port (and the S3 port on loopback) are published; Redis is not.
    const redisPorts = (await podman(['port', `${project}_redis_1`], { allowFail: true })).stdout.trim();
    assert.equal(redisPorts, '');
  });

  it('renders the gpu and monitoring profiles', async () => {
    const gpu = (await compose(['--profile', 'gpu', 'config'])).stdout;
    assert.match(gpu, /worker-gpu-0:[\s\S]*device_ids:\s*\n\s*- '0'[\s\S]*WORKER_PROVIDERS: cuda:0,cpu/);
    const services = (await compose(['--profile', 'gpu', '--profile', 'monitoring', 'config', '--services'])).stdout.trim().split('\n').sort();
    assert.deepEqual(services, ['api', 'grafana', 'minio', 'prometheus', 'redis', 'redis-exporter', 'worker', 'worker-gpu-0', 'worker-gpu-1'].sort());
  });
});
