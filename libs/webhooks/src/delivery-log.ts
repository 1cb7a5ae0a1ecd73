/**
 * Every delivery attempt of a subscription, in a capped Redis stream
 * `{prefix}:webhooks:{project}:{subscription}:deliveries`: what a studio reads to see why its
 * endpoint got (or did not get) an event.
 */
import type { RedisClient } from '@celfarm/jobs';
import { deliveryAttemptSchema, type DeliveryAttempt } from './records.ts';

export { deliveryAttemptSchema, type DeliveryAttempt } from './records.ts';

/** As long as delivery jobs are kept (fanout.ts), so a fan-out and its marker expire together. */
const DELIVERED_KEEP_S = 7 * 24 * 3600;

export class DeliveryLog {
  constructor(
    readonly redis: RedisClient,
    readonly prefix = 'celfarm',
    /** Entries kept per subscription (approximately: MAXLEN ~). */
    readonly maxLen = 1000,
  ) {}

  key(project: string, subscriptionId: string): string {
    return `${this.prefix}:webhooks:${project}:${subscriptionId}:deliveries`;
  }

  /** Marks that `eventId` reached the subscription, for as long as fan-outs remember event ids. */
  private deliveredKey(project: string, subscriptionId: string, eventId: string): string {
    return `${this.key(project, subscriptionId)}:done:${eventId}`;
  }

  /** Logs an attempt; an accepted one also marks its event delivered, in the same transaction. */
  async append(project: string, subscriptionId: string, a: DeliveryAttempt): Promise<void> {
    const entry = JSON.stringify(deliveryAttemptSchema.parse(a));
    const tx = this.redis.multi().xadd(this.key(project, subscriptionId), 'MAXLEN', '~', this.maxLen, '*', 'attempt', entry);
    if (a.delivered) tx.set(this.deliveredKey(project, subscriptionId, a.eventId), a.at, 'EX', DELIVERED_KEEP_S);
    const results = await tx.exec();
    const failed = results?.find(([e]) => e);
    if (failed) throw failed[0]!;
  }

  /** Whether the receiver already accepted `eventId` (a job run again after a crash skips it). */
  async wasDelivered(project: string, subscriptionId: string, eventId: string): Promise<boolean> {
    return (await this.redis.exists(this.deliveredKey(project, subscriptionId, eventId))) === 1;
  }

  /** The newest `limit` attempts, newest first. */
  async list(project: string, subscriptionId: string, limit = 50): Promise<DeliveryAttempt[]> {
    const rows = await this.redis.xrevrange(this.key(project, subscriptionId), '+', '-', 'COUNT', limit);
    return rows.map(([, fields]) => deliveryAttemptSchema.parse(JSON.parse(fields[1]!)));
  }

  async clear(project: string, subscriptionId: string): Promise<void> {
    await this.redis.del(this.key(project, subscriptionId));
  }
}
