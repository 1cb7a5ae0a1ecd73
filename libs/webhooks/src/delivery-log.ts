/**
 * Every delivery attempt of a subscription, in a capped Redis stream
 * `{prefix}:webhooks:{project}:{subscription}:deliveries`: what a studio reads to see why its
 * endpoint got (or did not get) an event.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';

export const deliveryAttemptSchema = z.object({
  /** ISO time the attempt started. */
  at: z.string(),
  eventId: z.string(),
  type: z.string(),
  /** 1-based attempt of this delivery (a redelivery starts again at 1). */
  attempt: z.number().int().min(1),
  /** HTTP status of the answer; absent when there was none. */
  status: z.number().int().optional(),
  /** Why it failed: no answer, a non-2xx status, a refused target. */
  error: z.string().optional(),
  durationMs: z.number().int().min(0),
  delivered: z.boolean(),
  /** The target was refused by the SSRF guard: no further attempts. */
  refused: z.boolean().optional(),
});
export type DeliveryAttempt = z.infer<typeof deliveryAttemptSchema>;

export class DeliveryLog {
  constructor(
    readonly redis: Redis,
    readonly prefix = 'celfarm',
    /** Entries kept per subscription (approximately: MAXLEN ~). */
    readonly maxLen = 1000,
  ) {}

  key(project: string, subscriptionId: string): string {
    return `${this.prefix}:webhooks:${project}:${subscriptionId}:deliveries`;
  }

  async append(project: string, subscriptionId: string, a: DeliveryAttempt): Promise<void> {
    await this.redis.xadd(this.key(project, subscriptionId), 'MAXLEN', '~', this.maxLen, '*', 'attempt', JSON.stringify(deliveryAttemptSchema.parse(a)));
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
