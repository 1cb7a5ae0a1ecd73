/**
 * The deploy suite's toolbox: podman (with test/deploy/containers.conf), the images it builds
 * (the offline stand-in base, the API and CPU-worker images, stand-ins for Redis and S3), and
 * containers labelled with the run, so a run removes exactly what it started.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { S3ObjectStore } from '@celfarm/storage';
import { until } from '@celfarm/services';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CONTAINERS_CONF = join(ROOT, 'test/deploy/containers.conf');
/** Every container, pod and volume of the suite carries this label (value: the run id). */
export const LABEL = 'celfarm-deploy-test';

export const IMAGES = {
  base: process.env.CELFARM_BASE_IMAGE ?? 'localhost/celfarm-standin-node:20-bookworm',
  api: 'localhost/celfarm/api:deploy-test',
  workerCpu: 'localhost/celfarm/worker-cpu:deploy-test',
  /** docker/worker-cuda.Dockerfile built on the stand-in base, without the CUDA provider. */
  workerCudaShape: 'localhost/celfarm/worker-cuda-shape:deploy-test',
  redis: 'localhost/celfarm-standin-redis:7',
  s3: 'localhost/celfarm-standin-s3:3.7.1',
} as const;

const started = Date.now();
/** A progress line on stderr, with seconds since the suite file started. */
export function log(message: string): void {
  process.stderr.write(`[deploy ${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  input?: string;
  timeoutMs?: number;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFail?: boolean;
}

/** Runs a command to completion, collecting its output; throws (with the output) on failure. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code: code ?? (signal ? 128 : 1), stdout, stderr };
      if (result.code !== 0 && !opts.allowFail) {
        const tail = (s: string) => s.split('\n').slice(-40).join('\n');
        reject(new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}${signal ? ' (timeout?)' : ''}\n--- stdout\n${tail(stdout)}\n--- stderr\n${tail(stderr)}`));
      } else resolvePromise(result);
    });
    // A command that exits without reading its input closes the pipe: not an error here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** podman with the suite's containers.conf (runc, cgroupfs, no default ulimits). */
export function podman(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run('podman', args, { ...opts, env: { CONTAINERS_CONF, ...opts.env } });
}

const hasCommand = async (name: string) => (await run('sh', ['-c', `command -v ${name}`], { allowFail: true })).code === 0;

/** A Debian package the suite needs, found by a command on PATH or by a file it installs. */
export type HostTool = string | { pkg: string; path: string };

/** Installs podman, runc, debootstrap (and `extra`) from Debian when missing (as root), else says what to do. */
export async function ensureHostTools(extra: HostTool[] = []): Promise<void> {
  const missing: string[] = [];
  for (const tool of ['podman', 'runc', 'debootstrap', ...extra]) {
    const present = typeof tool === 'string' ? await hasCommand(tool) : existsSync(tool.path);
    if (!present) missing.push(typeof tool === 'string' ? tool : tool.pkg);
  }
  if (!missing.length) return;
  if (process.getuid?.() !== 0) throw new Error(`the deploy suite needs ${missing.join(', ')}: apt-get install -y ${missing.join(' ')}`);
  log(`installing ${missing.join(', ')} from Debian`);
  await run('apt-get', ['update', '-q'], { timeoutMs: 300_000 });
  await run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 600_000 });
}

export async function imageExists(ref: string): Promise<boolean> {
  return (await podman(['image', 'exists', ref], { allowFail: true })).code === 0;
}

/** Build secret with this machine's CA bundle, for a TLS-intercepting proxy in front of npm. */
function caSecret(): string[] {
  const ca = process.env.NODE_EXTRA_CA_CERTS ?? '/etc/ssl/certs/ca-certificates.crt';
  return existsSync(ca) ? ['--secret', `id=ca,src=${ca}`] : [];
}

/** `podman build` of a Dockerfile (path relative to the repository) with the stand-in base. */
export async function buildImage(tag: string, dockerfile: string, opts: { target?: string; context?: string; args?: Record<string, string> } = {}): Promise<number> {
  const t0 = Date.now();
  const buildArgs = Object.entries({ BASE: IMAGES.base, ...opts.args }).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
  await podman(
    [
      'build', '--network', 'host', '--format', 'docker', '--layers', ...caSecret(), ...buildArgs,
      ...(opts.target ? ['--target', opts.target] : []),
      '-f', join(ROOT, dockerfile), '-t', tag, opts.context ?? ROOT,
    ],
    { timeoutMs: 900_000 },
  );
  const seconds = (Date.now() - t0) / 1000;
  log(`built ${tag} in ${seconds.toFixed(1)} s`);
  return seconds;
}

/**
 * A copy of the working tree (tracked and untracked files git does not ignore) to build from, so
 * both images of a run come from the same sources, sharing one cached build stage, even while
 * files change in the checkout.
 */
let snapshot: Promise<string> | undefined;
/** The run's one snapshot of the sources (see {@link snapshotContext}). */
export const buildContext = (): Promise<string> => (snapshot ??= snapshotContext());

export async function snapshotContext(): Promise<string> {
  const dest = join(ROOT, '.cache/deploy/context');
  await rm(dest, { recursive: true, force: true });
  const files = (await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'])).stdout.split('\0').filter(Boolean);
  for (const f of files) {
    const src = join(ROOT, f);
    if (!existsSync(src)) continue;
    await mkdir(dirname(join(dest, f)), { recursive: true });
    // Timestamps kept: unchanged files then hit podman's layer cache.
    await cp(src, join(dest, f), { preserveTimestamps: true });
  }
  return dest;
}

/** Size of a local image in bytes. */
export async function imageSize(ref: string): Promise<number> {
  return Number((await podman(['image', 'inspect', '--format', '{{.Size}}', ref])).stdout.trim());
}

/**
 * The images every suite needs: the stand-in base (debootstrap + this machine's Node 20, built
 * once and kept), the API and CPU-worker images from docker/Dockerfile (layer-cached, so a later
 * suite gets them in seconds), and the Redis and S3 stand-ins.
 */
export async function ensureImages(): Promise<Record<string, number>> {
  await ensureHostTools();
  const seconds: Record<string, number> = {};
  if (!(await imageExists(IMAGES.base))) {
    const t0 = Date.now();
    log(`building the stand-in base ${IMAGES.base} (debootstrap)`);
    await run(join(ROOT, 'docker/standin/make-base.sh'), [IMAGES.base], { env: { CONTAINERS_CONF }, timeoutMs: 900_000 });
    seconds.base = (Date.now() - t0) / 1000;
  }
  const context = await buildContext();
  seconds.api = await buildImage(IMAGES.api, 'docker/Dockerfile', { target: 'api', context });
  seconds.workerCpu = await buildImage(IMAGES.workerCpu, 'docker/Dockerfile', { target: 'worker-cpu', context });
  // Layer-cached: seconds unless their Dockerfiles changed.
  seconds.redis = await buildImage(IMAGES.redis, 'docker/standin/redis.Dockerfile', { context: join(ROOT, 'docker/standin') });
  seconds.s3 = await buildImage(IMAGES.s3, 'docker/standin/s3.Dockerfile', { context: join(ROOT, 'docker/standin') });
  return seconds;
}

export interface ContainerSpec {
  image: string;
  env?: Record<string, string>;
  /** `volume-or-path:/in/container[:opts]` */
  volumes?: string[];
  /** Arguments after the image (the command). */
  args?: string[];
  extra?: string[];
}

/** Containers, volumes and pods of one suite run, all removed by `removeAll()`. */
export class ContainerSet {
  readonly names: string[] = [];
  readonly volumes: string[] = [];

  constructor(readonly runId: string) {}

  name(short: string): string {
    return `cfd-${this.runId}-${short}`;
  }

  /** `podman run -d --network host`; returns the container name. */
  async start(short: string, spec: ContainerSpec): Promise<string> {
    const name = this.name(short);
    const env = Object.entries(spec.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    const vols = (spec.volumes ?? []).flatMap((v) => ['-v', v]);
    this.names.push(name);
    await podman(['run', '-d', '--name', name, '--label', `${LABEL}=${this.runId}`, '--network', 'host', ...env, ...vols, ...(spec.extra ?? []), spec.image, ...(spec.args ?? [])]);
    return name;
  }

  async volume(short: string): Promise<string> {
    const name = this.name(short);
    await podman(['volume', 'create', '--label', `${LABEL}=${this.runId}`, name]);
    this.volumes.push(name);
    return name;
  }

  async logs(short: string, tail = 60): Promise<string> {
    const r = await podman(['logs', '--tail', String(tail), this.name(short)], { allowFail: true });
    return `${r.stdout}${r.stderr}`;
  }

  async removeAll(): Promise<void> {
    await removeLabelled(this.runId);
  }
}

/** Removes every container, pod and volume labelled with `runId` (or with any run, when omitted). */
export async function removeLabelled(runId?: string): Promise<void> {
  const filter = runId ? `label=${LABEL}=${runId}` : `label=${LABEL}`;
  const ids = (await podman(['ps', '-aq', '--filter', filter], { allowFail: true })).stdout.split('\n').filter(Boolean);
  // -v: with their anonymous volumes (the worker images declare one for the pack cache).
  if (ids.length) await podman(['rm', '-f', '-v', '-t', '0', ...ids], { allowFail: true });
  const pods = (await podman(['pod', 'ps', '-q', '--filter', filter], { allowFail: true })).stdout.split('\n').filter(Boolean);
  if (pods.length) await podman(['pod', 'rm', '-f', ...pods], { allowFail: true });
  const vols = (await podman(['volume', 'ls', '-q', '--filter', filter], { allowFail: true })).stdout.split('\n').filter(Boolean);
  if (vols.length) await podman(['volume', 'rm', '-f', ...vols], { allowFail: true });
}

/**
 * Runs the healthchecks of the running containers matching `filter` every `intervalMs`, as the
 * Docker daemon would: podman schedules them with systemd timers, which CI machines lack, so
 * without this `depends_on: condition: service_healthy` would wait forever. Returns a stop function.
 */
export function pumpHealthchecks(filter: string, intervalMs = 2000): () => void {
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      const names = (await podman(['ps', '--filter', filter, '--format', '{{.Names}}'], { allowFail: true })).stdout.split('\n').filter(Boolean);
      await Promise.all(names.map((n) => podman(['healthcheck', 'run', n], { allowFail: true, timeoutMs: 20_000 })));
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  };
  void loop();
  return () => {
    stopped = true;
  };
}

/** Waits until `url` answers 2xx; returns the body. */
export async function waitForHttp(url: string, timeoutMs = 90_000, describe?: () => Promise<string>): Promise<string> {
  try {
    return await until(
      `${url} to answer 2xx`,
      async () => {
        const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
        return r.ok ? await r.text() : undefined;
      },
      { timeoutMs, intervalMs: 250, retryErrors: true },
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}${describe ? `\n${await describe()}` : ''}`);
  }
}

/** Uploads a folder (a model pack) to `prefix/` in an S3 bucket. */
export async function uploadFolder(endpoint: string, bucket: string, dir: string, prefix: string): Promise<number> {
  const store = new S3ObjectStore({ endpoint, region: 'us-east-1', bucket, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
  let n = 0;
  try {
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        const full = join(d, e.name);
        if (e.isDirectory()) await walk(full);
        else {
          await store.put(`${prefix}/${relative(dir, full)}`, await readFile(full));
          n++;
        }
      }
    };
    await walk(dir);
  } finally {
    store.destroy();
  }
  return n;
}

export const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;
