/**
 * Local instances of the farm's real dependencies, started by the project itself (demo, tests,
 * benches): Redis from Debian's `redis-server` (AOF on, maxmemory-policy noeviction) — one
 * server, or a Redis Cluster of several formed with `redis-cli --cluster create` — and an
 * embedded S3 endpoint (s3rver). Each binds 127.0.0.1 on a free port and lives in its own folder.
 */
import { execFile, fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { until } from './wait.ts';

const run = promisify(execFile);


export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number, what: string, child?: ChildProcess): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`${what} did not listen on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RunningRedis {
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Path of Debian's redis-server, or an error that says how to install it. */
export function redisServerPath(): string {
  const r = spawnSync('sh', ['-c', 'command -v redis-server || ls /usr/bin/redis-server'], { encoding: 'utf8' });
  const path = r.stdout.trim().split('\n')[0];
  if (!path) throw new Error('redis-server not found: install it with `apt-get install -y redis-server` (or set REDIS_URL)');
  return path;
}

/**
 * Path of Debian's redis-cli (package redis-tools, which redis-server depends on), or an error
 * that says how to install it.
 */
export function redisCliPath(): string {
  const r = spawnSync('sh', ['-c', 'command -v redis-cli || ls /usr/bin/redis-cli'], { encoding: 'utf8' });
  const path = r.stdout.trim().split('\n')[0];
  if (!path) throw new Error('redis-cli not found: install it with `apt-get install -y redis-tools`');
  return path;
}

/**
 * Starts redis-server with AOF on (`appendfsync always`) and `maxmemory-policy noeviction` in
 * `dir`; `extraArgs` are more `--option value` pairs (cluster mode, say).
 */
export async function startRedis(dir: string, port?: number, extraArgs: string[] = []): Promise<RunningRedis> {
  await mkdir(dir, { recursive: true });
  const p = port ?? (await freePort());
  const child = spawn(
    redisServerPath(),
    [
      '--port', String(p),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--appendonly', 'yes',
      '--appendfsync', 'always',
      '--save', '',
      '--maxmemory-policy', 'noeviction',
      '--protected-mode', 'no',
      '--daemonize', 'no',
      '--logfile', '',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  await waitForPort(p, 10_000, 'redis-server', child);
  return {
    url: `redis://127.0.0.1:${p}`,
    port: p,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export interface RunningRedisCluster {
  /** `host:port` of every master, comma-separated: the farm's REDIS_CLUSTER_NODES. */
  nodes: string;
  /** `redis://127.0.0.1:<first master>`: the farm's REDIS_URL (only its scheme and credentials count there). */
  url: string;
  /** The masters, in the order they were started. */
  servers: RunningRedis[];
  stop(): Promise<void>;
}

/**
 * Starts `masters` redis-servers in cluster mode (each as {@link startRedis} does, in
 * `dir/node-N`, its cluster state in `dir/nodes-N.conf`), forms a Redis Cluster of them with
 * `redis-cli --cluster create` (no replicas; the slots split evenly) and resolves once every
 * node reports `cluster_state:ok`. Throws, naming what is missing, without redis-server or redis-cli.
 */
export async function startRedisCluster(dir: string, masters = 3): Promise<RunningRedisCluster> {
  const cli = redisCliPath();
  await mkdir(dir, { recursive: true });
  const servers: RunningRedis[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  const taken = new Set<number>();
  const port = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (taken.has(p)) continue;
      taken.add(p);
      return p;
    }
  };
  try {
    for (let i = 1; i <= masters; i++) {
      // The cluster bus port is given, not left at port + 10000, which may be past 65535 or taken.
      const [clientPort, busPort] = [await port(), await port()];
      servers.push(
        await startRedis(join(dir, `node-${i}`), clientPort, [
          '--cluster-enabled', 'yes',
          '--cluster-config-file', join(dir, `nodes-${i}.conf`),
          '--cluster-port', String(busPort),
        ]),
      );
    }
    const nodes = servers.map((s) => `127.0.0.1:${s.port}`);
    await run(cli, ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    for (const s of servers) {
      await until(
        `cluster_state:ok on 127.0.0.1:${s.port}`,
        async () => /^cluster_state:ok\b/m.test((await run(cli, ['-p', String(s.port), 'cluster', 'info'])).stdout),
        { timeoutMs: 20_000, intervalMs: 100 },
      );
    }
    return { nodes: nodes.join(','), url: servers[0]!.url, servers, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

export interface RunningS3 {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts the embedded S3 endpoint (s3rver) storing objects under `dir`, with `bucket` created, in
 * a child process (s3rver-process.cjs says why); resolves once it accepts requests.
 */
export async function startS3(dir: string, bucket: string, port?: number): Promise<RunningS3> {
  await mkdir(dir, { recursive: true });
  const p = port ?? (await freePort());
  const child = fork(fileURLToPath(new URL('./s3rver-process.cjs', import.meta.url)), [dir, bucket, String(p)], {
    execArgv: ['--openssl-legacy-provider'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`s3rver exited (${code}) before it listened on port ${p}`));
    child.once('exit', onExit);
    child.once('error', reject);
    child.once('message', () => {
      child.off('exit', onExit);
      resolve();
    });
  });
  // Its IPC channel must not keep the caller's event loop alive.
  child.channel?.unref();
  child.unref();
  return {
    endpoint: `http://127.0.0.1:${p}`,
    port: p,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        // Referenced again: the caller's event loop must wait for this exit.
        child.ref();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export * from './farm-env.ts';
export * from './process.ts';
export * from './tcp-proxy.ts';
export * from './wait.ts';
