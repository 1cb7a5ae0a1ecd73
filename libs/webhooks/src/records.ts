/**
 * What webhooks send and keep, as data: the event body a subscriber receives, the event types a
 * subscription may name, a delivery attempt as logged. Imports only zod and the zod-only event
 * types of libs/jobs, so the wire contract re-exports it for the browser as
 * `@celfarm/webhooks/records`; the stores and the delivery (Redis, BullMQ, node:*) are elsewhere.
 */
import { z } from 'zod';
import { EVENT_TYPES } from '@celfarm/jobs/event-types';

/** The event a subscriber's `ping` delivers: no shot, a fresh id per ping. */
export const PING_EVENT = 'webhook.ping';
export const WEBHOOK_EVENT_TYPES = [...EVENT_TYPES, PING_EVENT] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** The JSON body of a delivery: a farm event, or a `webhook.ping`. */
export const webhookEventSchema = z.object({
  /** A farm event's stable id, or `evt_ping_…`. */
  id: z.string().regex(/^evt_[a-z0-9_]+$/),
  type: z.enum(WEBHOOK_EVENT_TYPES),
  createdAt: z.string(),
  project: z.string(),
  /** Absent only on `webhook.ping`. */
  shotId: z.string().optional(),
  frame: z.number().int().optional(),
  data: z.record(z.string(), z.unknown()),
});
export type WebhookEvent = z.output<typeof webhookEventSchema>;

/** Event types a subscription may name; `*` is every type. */
export const subscribableEventSchema = z.union([z.enum(EVENT_TYPES), z.literal('*')]);
export type SubscribableEvent = z.output<typeof subscribableEventSchema>;

/** One delivery attempt of a subscription. */
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
export type DeliveryAttempt = z.output<typeof deliveryAttemptSchema>;
