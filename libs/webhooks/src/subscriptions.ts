/**
 * Webhook subscriptions, per project, in one Redis hash `{prefix}:webhooks:{project}` (id →
 * JSON), so fan-out reads a project's subscriptions in one round trip. The secret is stored
 * (deliveries are signed with it) and shown to the client only when the subscription is created.
 */
import { randomBytes } from 'node:crypto';
import type { RedisClient } from '@celfarm/jobs';
import { z } from 'zod';
import type { EventType } from '@celfarm/jobs';
import { subscribableEventSchema, type SubscribableEvent } from './records.ts';
import { newSecret } from './signing.ts';

export { subscribableEventSchema, type SubscribableEvent } from './records.ts';

export const subscriptionSchema = z.object({
  /** `wh_` + 24 hex. */
  id: z.string(),
  project: z.string(),
  url: z.string(),
  events: z.array(subscribableEventSchema).min(1),
  description: z.string().optional(),
  /** `whsec_` + base64 of 24 random bytes. */
  secret: z.string(),
  createdAt: z.string(),
  /** A disabled subscription receives nothing (pending deliveries are skipped). */
  disabled: z.boolean().optional(),
});
export type Subscription = z.infer<typeof subscriptionSchema>;

export interface NewSubscription {
  url: string;
  events: SubscribableEvent[];
  description?: string;
}

export const matches = (sub: Subscription, type: EventType): boolean =>
  !sub.disabled && (sub.events.includes('*') || sub.events.includes(type));

export class SubscriptionStore {
  constructor(
    readonly redis: RedisClient,
    readonly prefix = 'celfarm',
    private readonly clock: () => Date = () => new Date(),
  ) {}

  key(project: string): string {
    return `${this.prefix}:webhooks:${project}`;
  }

  async create(project: string, input: NewSubscription): Promise<Subscription> {
    const sub = subscriptionSchema.parse({
      id: `wh_${randomBytes(12).toString('hex')}`,
      project,
      url: input.url,
      events: [...new Set(input.events)],
      ...(input.description ? { description: input.description } : {}),
      secret: newSecret(),
      createdAt: this.clock().toISOString(),
    });
    await this.redis.hset(this.key(project), sub.id, JSON.stringify(sub));
    return sub;
  }

  /** The subscription `id` of `project`, or null (another project's id is null too). */
  async get(project: string, id: string): Promise<Subscription | null> {
    const raw = await this.redis.hget(this.key(project), id);
    return raw ? subscriptionSchema.parse(JSON.parse(raw)) : null;
  }

  /** The project's subscriptions, oldest first. */
  async list(project: string): Promise<Subscription[]> {
    const all = await this.redis.hvals(this.key(project));
    return all.map((v) => subscriptionSchema.parse(JSON.parse(v))).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** The enabled subscriptions of `project` that want `type`. */
  async matching(project: string, type: EventType): Promise<Subscription[]> {
    return (await this.list(project)).filter((s) => matches(s, type));
  }

  /** Changes events, description or the disabled flag; null when there is no such subscription. */
  async update(project: string, id: string, patch: { events?: string[]; description?: string; disabled?: boolean }): Promise<Subscription | null> {
    const cur = await this.get(project, id);
    if (!cur) return null;
    const next = subscriptionSchema.parse({
      ...cur,
      ...(patch.events ? { events: [...new Set(patch.events)] } : {}),
      ...(patch.description !== undefined ? { description: patch.description } : {}),
      ...(patch.disabled !== undefined ? { disabled: patch.disabled } : {}),
    });
    await this.redis.hset(this.key(project), id, JSON.stringify(next));
    return next;
  }

  async delete(project: string, id: string): Promise<boolean> {
    return (await this.redis.hdel(this.key(project), id)) === 1;
  }
}
