/**
 * Webhooks in the API process: the subscription routes, the event publisher the shot service
 * uses (the event bus: publish once; the bus's outbox carries the event to the dispatcher), and —
 * with WEBHOOK_DELIVERY (default on) — the outbox dispatcher that fans events out to the
 * `webhooks` queue and the BullMQ worker that delivers it, started at boot and stopped before
 * shutdown.
 */
import {
  Global,
  Inject,
  Injectable,
  Logger,
  Module,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { Worker } from 'bullmq';
import type { Config } from '@celfarm/config';
import { EventBus, type RedisClient } from '@celfarm/jobs';
import type { FarmMetrics } from '@celfarm/metrics';
import type { KeyStore } from '@celfarm/tenancy';
import {
  createDeliveryProcessor,
  DeliveryLog,
  EventArchive,
  type EventPublisher,
  startDeliveryWorker,
  SubscriptionStore,
  WebhookBacklog,
  WebhookDeliverer,
  WebhookDispatcher,
  WebhookFanout,
} from '@celfarm/webhooks';
import { KEY_STORE } from '../auth/tokens.ts';
import { redisConnection } from '../core/redis.ts';
import { CLOCK, CONFIG, METRICS, REDIS } from '../core/tokens.ts';
import { WebhooksController } from './webhooks.controller.ts';
import { WebhooksService } from './webhooks.service.ts';
import { EVENT_PUBLISHER, WEBHOOKS, type Webhooks } from './webhooks.tokens.ts';

/**
 * The queue's own connections: one for enqueueing (fails fast), one for the delivery worker (the
 * outbox dispatcher duplicates it for its blocking reads).
 */
const QUEUE_CONNECTION = Symbol('celfarm.webhooks.queue-redis');
const WORKER_CONNECTION = Symbol('celfarm.webhooks.worker-redis');

@Injectable()
class DeliveryLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('webhooks');
  private worker?: Worker;
  private dispatcher?: WebhookDispatcher;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(WEBHOOKS) private readonly webhooks: Webhooks,
    @Inject(QUEUE_CONNECTION) private readonly queueRedis: RedisClient,
    @Inject(WORKER_CONNECTION) private readonly workerRedis: RedisClient,
    @Inject(METRICS) private readonly metrics: FarmMetrics,
  ) {}

  onApplicationBootstrap(): void {
    this.webhooks.fanout.queue.on('error', (e) => this.logger.warn(`queue: ${e.message}`));
    // The backlog is the farm's, not this process's: served whether or not this API delivers.
    this.metrics.setWebhookBacklogSource(new WebhookBacklog(this.webhooks.fanout.queue, this.queueRedis, this.config.REDIS_PREFIX));
    if (!this.config.WEBHOOK_DELIVERY) return;
    // Every published event reaches the queue through the outbox, whichever process published it.
    this.dispatcher = new WebhookDispatcher(this.webhooks.fanout, {
      redis: this.workerRedis,
      prefix: this.config.REDIS_PREFIX,
      onError: (e) => this.logger.warn(`outbox dispatcher: ${e.message}`),
    });
    this.dispatcher.start();
    const processor = createDeliveryProcessor(this.webhooks.deliverer, this.webhooks.subscriptions, { observer: this.metrics.webhookDelivery });
    this.worker = startDeliveryWorker(processor, {
      connection: this.workerRedis,
      prefix: this.config.REDIS_PREFIX,
      concurrency: this.config.WEBHOOK_CONCURRENCY,
      onError: (e) => this.logger.warn(`delivery worker: ${e.message}`),
    });
  }

  /**
   * Fan-outs and deliveries in flight finish (they need Redis and the queue, which close after
   * this); an outbox entry read but not yet fanned out stays pending for the next dispatcher.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.metrics.setWebhookBacklogSource(undefined);
    await Promise.all([this.dispatcher?.stop(), this.worker?.close()]);
  }

  async onApplicationShutdown(): Promise<void> {
    try {
      await this.webhooks.fanout.close();
    } catch (e) {
      this.logger.warn(`closing the webhooks queue: ${(e as Error).message}`);
    }
    this.queueRedis.disconnect();
    this.workerRedis.disconnect();
  }
}

@Global()
@Module({
  controllers: [WebhooksController],
  providers: [
    { provide: QUEUE_CONNECTION, inject: [CONFIG], useFactory: (config: Config) => redisConnection(config, 'webhook queue', { maxRetriesPerRequest: 2 }) },
    // BullMQ's blocking reads wait out Redis restarts instead of failing after N retries.
    { provide: WORKER_CONNECTION, inject: [CONFIG], useFactory: (config: Config) => redisConnection(config, 'webhook worker', { maxRetriesPerRequest: null }) },
    {
      provide: WEBHOOKS,
      inject: [CONFIG, REDIS, QUEUE_CONNECTION, CLOCK, KEY_STORE],
      useFactory: (config: Config, redis: RedisClient, queueRedis: RedisClient, clock: () => Date, keys: KeyStore): Webhooks => {
        const prefix = config.REDIS_PREFIX;
        const subscriptions = new SubscriptionStore(redis, prefix, clock);
        const archive = new EventArchive(redis, prefix);
        const log = new DeliveryLog(redis, prefix);
        const allowHosts = async (project: string) => [...config.WEBHOOK_ALLOW_HOSTS, ...((await keys.project(project))?.webhookAllowHosts ?? [])];
        return {
          bus: new EventBus(redis, prefix, clock),
          subscriptions,
          archive,
          log,
          fanout: new WebhookFanout(subscriptions, archive, {
            connection: queueRedis,
            prefix,
            attempts: config.WEBHOOK_ATTEMPTS,
            backoffMs: config.WEBHOOK_BACKOFF_MS,
          }),
          deliverer: new WebhookDeliverer({
            log,
            allowHosts,
            timeoutMs: config.WEBHOOK_TIMEOUT_MS,
            clock,
            onLogError: (e, entry) => new Logger('webhooks').warn(`delivery of ${entry.eventId} to ${entry.type} subscription accepted but not logged: ${e.message}`),
          }),
          allowHosts,
        };
      },
    },
    // Publishing is all: the bus writes the event to its outbox in the same MULTI, and the dispatcher fans it out.
    { provide: EVENT_PUBLISHER, inject: [WEBHOOKS], useFactory: (w: Webhooks): EventPublisher => w.bus },
    DeliveryLifecycle,
    WebhooksService,
  ],
  exports: [EVENT_PUBLISHER, WEBHOOKS],
})
export class WebhooksModule {}
