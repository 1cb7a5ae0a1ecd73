/**
 * Webhooks in the API process: the subscription routes, the event publisher the shot service
 * uses (publish once, then fan out), and — with WEBHOOK_DELIVERY (default on) — the BullMQ
 * worker that delivers the `webhooks` queue, started at boot and drained before shutdown.
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
import { Redis } from 'ioredis';
import type { Config } from '@celfarm/config';
import { EventBus } from '@celfarm/jobs';
import type { KeyStore } from '@celfarm/tenancy';
import {
  createDeliveryProcessor,
  DeliveryLog,
  EventArchive,
  publishAndFanout,
  startDeliveryWorker,
  SubscriptionStore,
  WebhookDeliverer,
  WebhookFanout,
} from '@celfarm/webhooks';
import { KEY_STORE } from '../auth/tokens.ts';
import { CLOCK, CONFIG, REDIS } from '../core/tokens.ts';
import { WebhooksController } from './webhooks.controller.ts';
import { WebhooksService } from './webhooks.service.ts';
import { EVENT_PUBLISHER, WEBHOOKS, type Webhooks } from './webhooks.tokens.ts';

/** The queue's own connections: one for enqueueing (fails fast), one for the delivery worker. */
const QUEUE_CONNECTION = Symbol('celfarm.webhooks.queue-redis');
const WORKER_CONNECTION = Symbol('celfarm.webhooks.worker-redis');

@Injectable()
class DeliveryLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('webhooks');
  private worker?: Worker;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(WEBHOOKS) private readonly webhooks: Webhooks,
    @Inject(QUEUE_CONNECTION) private readonly queueRedis: Redis,
    @Inject(WORKER_CONNECTION) private readonly workerRedis: Redis,
  ) {}

  onApplicationBootstrap(): void {
    this.webhooks.fanout.queue.on('error', (e) => this.logger.warn(`queue: ${e.message}`));
    if (!this.config.WEBHOOK_DELIVERY) return;
    this.worker = startDeliveryWorker(createDeliveryProcessor(this.webhooks.deliverer, this.webhooks.subscriptions), {
      connection: this.workerRedis,
      prefix: this.config.REDIS_PREFIX,
      concurrency: this.config.WEBHOOK_CONCURRENCY,
      onError: (e) => this.logger.warn(`delivery worker: ${e.message}`),
    });
  }

  /** Deliveries in flight finish (their log lines need Redis, which closes after this). */
  async beforeApplicationShutdown(): Promise<void> {
    await this.worker?.close();
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
    { provide: QUEUE_CONNECTION, inject: [CONFIG], useFactory: (config: Config) => new Redis(config.REDIS_URL, { maxRetriesPerRequest: 2 }) },
    // BullMQ's blocking reads wait out Redis restarts instead of failing after N retries.
    { provide: WORKER_CONNECTION, inject: [CONFIG], useFactory: (config: Config) => new Redis(config.REDIS_URL, { maxRetriesPerRequest: null }) },
    {
      provide: WEBHOOKS,
      inject: [CONFIG, REDIS, QUEUE_CONNECTION, CLOCK, KEY_STORE],
      useFactory: (config: Config, redis: Redis, queueRedis: Redis, clock: () => Date, keys: KeyStore): Webhooks => {
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
          deliverer: new WebhookDeliverer({ log, allowHosts, timeoutMs: config.WEBHOOK_TIMEOUT_MS, clock }),
          allowHosts,
        };
      },
    },
    { provide: EVENT_PUBLISHER, inject: [WEBHOOKS], useFactory: (w: Webhooks) => publishAndFanout(w.bus, w.fanout) },
    DeliveryLifecycle,
    WebhooksService,
  ],
  exports: [EVENT_PUBLISHER, WEBHOOKS],
})
export class WebhooksModule {}
