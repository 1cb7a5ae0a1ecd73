/**
 * What a webhook delivers: a farm event (libs/jobs) or the `webhook.ping` a client asks for, as
 * one JSON body `{id, type, createdAt, project, shotId?, frame?, data}`. Event bodies are kept
 * for as long as the event bus remembers their ids (7 days), so a delivery can be repeated.
 */
import { randomBytes } from 'node:crypto';
import type { RedisClient } from '@celfarm/jobs';
import { PING_EVENT, webhookEventSchema, type WebhookEvent } from './records.ts';

export { PING_EVENT, WEBHOOK_EVENT_TYPES, webhookEventSchema, type WebhookEvent, type WebhookEventType } from './records.ts';

/** The request body of a delivery: fixed key order, so a redelivery sends the same bytes. */
export function eventBody(e: WebhookEvent): string {
  return JSON.stringify({
    id: e.id,
    type: e.type,
    createdAt: e.createdAt,
    project: e.project,
    ...(e.shotId !== undefined ? { shotId: e.shotId } : {}),
    ...(e.frame !== undefined ? { frame: e.frame } : {}),
    data: e.data,
  });
}

/** A `webhook.ping` for one subscription (a fresh id per ping). */
export function pingEvent(project: string, subscriptionId: string, url: string, now: Date): WebhookEvent {
  return {
    id: `evt_ping_${randomBytes(12).toString('hex')}`,
    type: PING_EVENT,
    createdAt: now.toISOString(),
    project,
    data: { subscriptionId, url },
  };
}

const BODY_TTL_S = 7 * 24 * 3600;

/** Event bodies by id (`{prefix}:webhooks:event:{id}`, 7 days), for redelivery. */
export class EventArchive {
  constructor(
    readonly redis: RedisClient,
    readonly prefix = 'celfarm',
  ) {}

  private key(id: string): string {
    return `${this.prefix}:webhooks:event:${id}`;
  }

  async put(event: WebhookEvent): Promise<void> {
    await this.redis.set(this.key(event.id), JSON.stringify(event), 'EX', BODY_TTL_S);
  }

  /** The event `id` of `project`, or null (unknown, expired, or another project's). */
  async get(project: string, id: string): Promise<WebhookEvent | null> {
    const raw = await this.redis.get(this.key(id));
    if (!raw) return null;
    const event = webhookEventSchema.parse(JSON.parse(raw));
    return event.project === project ? event : null;
  }
}
