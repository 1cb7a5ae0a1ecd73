/**
 * The API's infrastructure, built once from the parsed config and shared by every resource
 * module: Redis (records), BullMQ queues, the object store, metrics and the pack manifest.
 * Connections close in `onApplicationShutdown`, after the HTTP server has drained.
 */
import { Global, Inject, Injectable, Logger, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import type { Config } from '@celfarm/config';
import { FarmQueues, QaThresholdStore, ShotStore, type RedisClient } from '@celfarm/jobs';
import { createMetrics } from '@celfarm/metrics';
import { S3ObjectStore, s3OptionsFrom } from '@celfarm/storage';
import { loadPackManifest } from './pack.ts';
import { redisConnection } from './redis.ts';
import { CLOCK, CONFIG, FARM_QUEUES, METRICS, OBJECT_STORE, PACK, QA_THRESHOLD_STORE, QUEUE_REDIS, RANDOM, REDIS, SHOT_STORE } from './tokens.ts';

export interface CoreOptions {
  /** Clock for record timestamps and shot ids (tests inject one). */
  clock?: () => Date;
  /** Source of random seeds and id suffixes (tests inject one). */
  random?: () => number;
}

/**
 * Wall time that never repeats a millisecond within this process: shot lists page by creation
 * time (ShotStore's cursor is the creation millisecond), so two shots created in the same
 * millisecond could straddle a page boundary and one would be skipped.
 */
export function monotonicClock(now: () => number = Date.now): () => Date {
  let last = 0;
  return () => {
    last = Math.max(now(), last + 1);
    return new Date(last);
  };
}

@Injectable()
class InfraLifecycle implements OnApplicationShutdown {
  private readonly logger = new Logger('api');
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(QUEUE_REDIS) private readonly queueRedis: RedisClient,
    @Inject(FARM_QUEUES) private readonly queues: FarmQueues,
    @Inject(OBJECT_STORE) private readonly objects: S3ObjectStore,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    try {
      await this.queues.close();
    } catch (e) {
      this.logger.warn(`closing queues: ${(e as Error).message}`);
    }
    this.queueRedis.disconnect();
    this.redis.disconnect();
    this.objects.destroy();
  }
}

@Global()
@Module({})
export class CoreModule {
  static forRoot(config: Config, options: CoreOptions = {}): DynamicModule {
    return {
      module: CoreModule,
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: CLOCK, useValue: options.clock ?? monotonicClock() },
        { provide: RANDOM, useValue: options.random ?? Math.random },
        // Requests fail fast (2 retries) instead of queueing forever while Redis is away.
        { provide: REDIS, useFactory: () => redisConnection(config, 'records', { maxRetriesPerRequest: 2 }) },
        { provide: QUEUE_REDIS, useFactory: () => redisConnection(config, 'queues', { maxRetriesPerRequest: 2 }) },
        {
          provide: SHOT_STORE,
          inject: [REDIS, CLOCK],
          useFactory: (redis: RedisClient, clock: () => Date) => new ShotStore(redis, config.REDIS_PREFIX, clock),
        },
        { provide: QA_THRESHOLD_STORE, inject: [REDIS], useFactory: (redis: RedisClient) => new QaThresholdStore(redis, config.REDIS_PREFIX) },
        {
          provide: FARM_QUEUES,
          inject: [QUEUE_REDIS],
          useFactory: (redis: RedisClient) =>
            new FarmQueues({ connection: redis, prefix: config.REDIS_PREFIX, frameAttempts: config.FRAME_ATTEMPTS }),
        },
        {
          provide: OBJECT_STORE,
          useFactory: async () => {
            const store = new S3ObjectStore(s3OptionsFrom(config));
            await store.ensureBucket();
            return store;
          },
        },
        { provide: METRICS, inject: [FARM_QUEUES], useFactory: (queues: FarmQueues) => createMetrics('api', queues) },
        { provide: PACK, inject: [OBJECT_STORE], useFactory: (objects: S3ObjectStore) => loadPackManifest(config, objects) },
        InfraLifecycle,
      ],
      exports: [CONFIG, CLOCK, RANDOM, REDIS, SHOT_STORE, QA_THRESHOLD_STORE, FARM_QUEUES, OBJECT_STORE, METRICS, PACK],
    };
  }
}
