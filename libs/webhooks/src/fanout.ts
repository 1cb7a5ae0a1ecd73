/**
 * Fan-out: one BullMQ job per (event, matching subscription) on the `webhooks` queue. The job id
 * is `${event.id}-${subscription.id}`, so fanning out the same event twice adds nothing; retries
 * back off exponentially for about a day. The WebhookDispatcher (dispatcher.ts) fans out every
 * event of the bus's outbox stream, so publishers only publish.
 */
import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { z } from 'zod';
import { webhookEventSchema, type EventArchive, type WebhookEvent } from './events.ts';
import { matches, type Subscription, type SubscriptionStore } from './subscriptions.ts';

export const WEBHOOK_QUEUE = 'webhooks';

/** The one job of the `webhooks` queue: deliver `event` to one subscription. */
export const deliveryJobSchema = z.strictObject({
  project: z.string(),
  subscriptionId: z.string().regex(/^wh_[a-f0-9]+$/),
  event: webhookEventSchema,
  /** A delivery asked for again (POST …/redeliver): posted even if the event was accepted before. */
  redelivery: z.literal(true).optional(),
});
export type DeliveryJob = z.infer<typeof deliveryJobSchema>;
export const DELIVERY_JOB = 'deliver';

export class DeliveryJobError extends Error {
  override readonly name = 'DeliveryJobError';
}

/** Validates a delivery job payload (on enqueue and on dequeue). */
export function parseDeliveryJob(data: unknown): DeliveryJob {
  const r = deliveryJobSchema.safeParse(data);
  if (!r.success) throw new DeliveryJobError(`webhook job: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

export const deliveryJobId = (eventId: string, subscriptionId: string): string => `${eventId}-${subscriptionId}`;

export interface FanoutOptions {
  connection: ConnectionOptions;
  /** Redis key prefix of the queue (REDIS_PREFIX). */
  prefix: string;
  /** Attempts per delivery (WEBHOOK_ATTEMPTS, default 13). */
  attempts: number;
  /** First retry delay; each next one doubles (WEBHOOK_BACKOFF_MS, default 20 000). */
  backoffMs: number;
}

const KEEP_S = 7 * 24 * 3600;

export class WebhookFanout {
  readonly queue: Queue;

  constructor(
    private readonly subscriptions: SubscriptionStore,
    private readonly archive: EventArchive,
    private readonly opts: FanoutOptions,
  ) {
    this.queue = new Queue(WEBHOOK_QUEUE, { connection: opts.connection, prefix: opts.prefix });
  }

  private jobOptions(jobId: string): JobsOptions {
    return {
      jobId,
      attempts: this.opts.attempts,
      backoff: { type: 'exponential', delay: this.opts.backoffMs },
      // Kept as long as the bus remembers event ids, so a repeated fan-out finds them and adds nothing.
      removeOnComplete: { age: KEEP_S },
      removeOnFail: { age: KEEP_S },
    };
  }

  /** Enqueues one delivery per matching subscription of the event's project; returns the job ids. */
  async fanout(event: WebhookEvent): Promise<string[]> {
    if (event.type === 'webhook.ping') return [];
    const type = event.type;
    const subs = (await this.subscriptions.list(event.project)).filter((s) => matches(s, type));
    if (subs.length === 0) return [];
    await this.archive.put(event);
    const jobs = subs.map((s) => ({
      name: DELIVERY_JOB,
      data: parseDeliveryJob({ project: event.project, subscriptionId: s.id, event }),
      opts: this.jobOptions(deliveryJobId(event.id, s.id)),
    }));
    await this.queue.addBulk(jobs);
    return jobs.map((j) => j.opts.jobId!);
  }

  /** Delivers `event` to `sub` again, as a new job (attempts start over); returns its job id. */
  async redeliver(sub: Subscription, event: WebhookEvent, now: Date = new Date()): Promise<string> {
    const jobId = `${deliveryJobId(event.id, sub.id)}-re${now.getTime().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    await this.queue.add(DELIVERY_JOB, parseDeliveryJob({ project: sub.project, subscriptionId: sub.id, event, redelivery: true }), this.jobOptions(jobId));
    return jobId;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
