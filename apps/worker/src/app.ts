/**
 * The worker process, wired: object store, model pack, inference host, Redis, the three queue
 * workers, the registry heartbeat and the metrics endpoint. main.ts parses the config and owns
 * the signals; this module owns the order things start and stop in.
 */
import { hostname } from 'node:os';
import type { Config } from '@celfarm/config';
import { connectRedis, EventBus, FarmQueues, ShotStore } from '@celfarm/jobs';
import { createMetrics } from '@celfarm/metrics';
import { PipelineHost } from '@celfarm/pipeline';
import { S3ObjectStore, s3OptionsFrom, WaitingObjectStore } from '@celfarm/storage';
import { FarmWorker } from './farm-worker.ts';
import { Heartbeat } from './heartbeat.ts';
import { NoopHost } from './noop-host.ts';
import { metricsUrl, startMetricsServer } from './metrics-server.ts';
import { resolvePack } from './pack-source.ts';
import { createFollowUps, createProcessors } from './processors.ts';
import { startQueueWorkers } from './queue-workers.ts';
import { Reaper } from './reaper.ts';

export interface WorkerApp {
  id: string;
  /** Stops taking jobs, lets the current ones finish, leaves the registry, releases everything. */
  stop(): Promise<void>;
}

export interface Logger {
  info(line: string): void;
  error(line: string): void;
}

const consoleLogger: Logger = { info: (l) => console.log(l), error: (l) => console.error(l) };
const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** The object store as /healthz reports it: `up`, or `down` since when and why. */
const storeHealth = (objects: WaitingObjectStore) => {
  const a = objects.availability();
  return a.available ? { state: 'up' } : { state: 'down', since: a.since, reason: a.reason, waiting: a.waiting };
};


export async function startWorkerApp(config: Config, log: Logger = consoleLogger): Promise<WorkerApp> {
  const id = config.WORKER_ID ?? `${hostname()}-${process.pid}`;
  const startedAt = new Date();
  const objects = new S3ObjectStore(s3OptionsFrom(config));
  await objects.ensureBucket();

  // One Redis, or a Cluster with REDIS_CLUSTER_NODES.
  const redis = connectRedis(config);
  // BullMQ's blocking reads must wait out Redis restarts instead of failing after N retries.
  const bull = connectRedis(config, { maxRetriesPerRequest: null });
  for (const [name, conn] of [['records', redis], ['queues', bull]] as const) {
    conn.on('error', (e: Error) => log.error(`worker ${id}: redis (${name}): ${e.message}`));
  }
  const store = new ShotStore(redis, config.REDIS_PREFIX);
  const queues = new FarmQueues({ connection: bull, prefix: config.REDIS_PREFIX, frameAttempts: config.FRAME_ATTEMPTS });
  const onQueueError = (e: Error) => log.error(`worker ${id}: queue: ${e.message}`);
  for (const queue of Object.values(queues.queues)) queue.on('error', onQueueError);
  queues.flows.on('error', onQueueError);
  const metrics = createMetrics('worker', queues);
  // Events are only published here: the bus's outbox takes them to the API's webhook dispatcher.
  const events = new EventBus(redis, config.REDIS_PREFIX);

  // Model load = resolving the pack (download when not cached) + opening it on the inference thread.
  const t0 = performance.now();
  const pack = await resolvePack(config, objects);
  const providers = config.WORKER_PROVIDERS.split(',').map((p) => p.trim()).filter(Boolean);
  const host =
    config.WORKER_ENGINE === 'noop'
      ? new NoopHost(pack.manifest)
      : new PipelineHost({
          packDir: pack.dir,
          providers,
          intraOpThreads: config.WORKER_THREADS > 0 ? config.WORKER_THREADS : undefined,
          // A download was verified file by file a moment ago; a folder in place is verified by the host.
          verifyHashes: pack.source === 'dir',
        });
  const info = await host.ready;
  const loadSeconds = (performance.now() - t0) / 1000;
  metrics.modelLoad.set({ pack: info.pack }, loadSeconds);
  log.info(
    `worker ${id}: pack ${info.pack} (${pack.source} ${pack.dir}, licence ${info.licence.name}) on ${info.provider}, loaded in ${loadSeconds.toFixed(2)} s`,
  );

  // Jobs wait out object-store outages here (no attempt spent, lock kept) instead of failing.
  const patientObjects = new WaitingObjectStore(objects, {
    maxDelayMs: config.S3_RETRY_MAX_DELAY_MS,
    onChange: (a) => (a.available ? log.info : log.error)(`worker ${id}: object store ${a.available ? 'reachable again' : `unreachable, waiting for it: ${a.reason}`}`),
  });
  const farm = new FarmWorker({
    workerId: id,
    store,
    objects: patientObjects,
    queues,
    host,
    manifest: pack.manifest,
    metrics,
    objectPrefix: config.S3_PREFIX,
    maxPixels: config.MAX_PIXELS,
    log: log.info,
    events,
  });
  const workers = startQueueWorkers(createProcessors(farm), {
    connection: bull,
    prefix: config.REDIS_PREFIX,
    lockDuration: config.LOCK_DURATION_MS,
    stallLimit: config.FRAME_STALL_LIMIT,
    name: id,
    onFailed: (queue, jobId, e) => log.error(`worker ${id}: job ${queue}/${jobId} failed: ${e.message}`),
    onStalled: (queue, jobId) => log.error(`worker ${id}: job ${queue}/${jobId} stalled (its worker was lost); back in the queue`),
    onError: (queue, e) => log.error(`worker ${id}: queue ${queue}: ${e.message}`),
    followUps: createFollowUps(farm, queues),
  });
  // As often as the stalled-job check: records of frames whose worker died follow their jobs.
  const reaper = new Reaper({
    reap: () => farm.fate.reap(),
    periodMs: Math.min(30_000, config.LOCK_DURATION_MS),
    onError: (e) => log.error(`worker ${id}: reaper: ${messageOf(e)}`),
  });
  reaper.start();
  const heartbeat = new Heartbeat({
    store,
    identity: { id, host: hostname(), pid: process.pid, provider: info.provider, pack: info.pack, startedAt: startedAt.toISOString() },
    status: () => farm.status(),
    periodMs: config.HEARTBEAT_MS,
    onError: (e) => log.error(`worker ${id}: heartbeat: ${messageOf(e)}`),
  });
  await heartbeat.start();

  let stopping = false;
  // A dead inference thread cannot be revived in-process: exit so the supervisor restarts the
  // worker; the frames it held come back to the queue through BullMQ's stalled-job check.
  void host.exited.then((reason) => {
    if (stopping) return;
    log.error(`worker ${id}: ${reason.message}; exiting`);
    process.exit(1);
  });
  const server =
    config.WORKER_METRICS_PORT !== undefined
      ? await startMetricsServer({
          registry: metrics.registry,
          host: config.WORKER_METRICS_HOST,
          port: config.WORKER_METRICS_PORT,
          // A store outage is not this worker's fault (restarting it would not help): reported, `ok` kept.
          health: () => ({ ok: !stopping, worker: id, pack: info.pack, provider: info.provider, ...farm.status(), store: storeHealth(patientObjects) }),
          // Ready = can take frames now: what an operator (or a readiness probe) wants to see
          // during an outage, while /healthz keeps the process from being restarted for it.
          ready: () => {
            const store = storeHealth(patientObjects);
            const redisUp = redis.status === 'ready' && bull.status === 'ready';
            const reasons = [
              ...(stopping ? ['stopping'] : []),
              ...(redisUp ? [] : [`redis ${bull.status === 'ready' ? redis.status : bull.status}`]),
              ...(store.state === 'up' ? [] : [`object store down since ${store.since}: ${store.reason}`]),
            ];
            return { ok: reasons.length === 0, worker: id, redis: redisUp ? 'up' : 'down', store, ...(reasons.length ? { reasons } : {}) };
          },
        })
      : undefined;
  // The address actually bound: with WORKER_METRICS_PORT=0 this line is how a scraper finds it.
  log.info(
    `worker ${id}: queues under ${config.REDIS_PREFIX}, lock ${config.LOCK_DURATION_MS} ms, metrics ${server ? `on ${metricsUrl(server)}` : 'off'}`,
  );
  log.info(`worker ${id} ready`);

  return {
    id,
    async stop() {
      stopping = true;
      // Jobs waiting for an unreachable store go back to the queue (no attempt spent) instead of
      // holding the shutdown; with the store up this changes nothing.
      patientObjects.close();
      // close() stops fetching and waits for the jobs in progress to finish.
      await Promise.all(workers.map((w) => w.close()));
      await reaper.stop();
      await heartbeat.stop();
      await host.close();
      await queues.close();
      if (server) await new Promise<void>((done) => server.close(() => done()));
      await Promise.all([redis.quit(), bull.quit()]);
      objects.destroy();
    },
  };
}
