/**
 * Farm events as clients see them: streamed to the dashboard (`GET /v1/live`, `event: farm`) and
 * POSTed to webhook subscribers as `{id, type, createdAt, project, shotId?, frame?, data}`.
 */
import { z } from 'zod';

export const EVENT_TYPES = [
  'shot.created',
  'shot.started',
  'frame.completed',
  'frame.failed',
  'shot.completed',
  'shot.failed',
  'shot.cancelled',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const farmEventSchema = z.object({
  /** Stable id: `evt_` + 24 hex of sha256(type, shot, frame, round); the same on every delivery. */
  id: z.string(),
  type: z.enum(EVENT_TYPES),
  project: z.string(),
  shotId: z.string(),
  frame: z.number().int().optional(),
  /** ISO time of the first publication. */
  createdAt: z.string(),
  /** Event payload (shot state, frame output key, error, counts …). */
  data: z.record(z.string(), z.unknown()),
});
export type FarmEvent = z.output<typeof farmEventSchema>;

/** The event a subscriber's `ping` delivers: no shot, a fresh id per ping. */
export const PING_EVENT = 'webhook.ping';
export const WEBHOOK_EVENT_TYPES = [...EVENT_TYPES, PING_EVENT] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** The JSON body of a webhook delivery. */
export const webhookEventSchema = farmEventSchema.extend({
  id: z.string().regex(/^evt_[a-z0-9_]+$/),
  type: z.enum(WEBHOOK_EVENT_TYPES),
  /** Absent only on `webhook.ping`. */
  shotId: z.string().optional(),
});
export type WebhookEvent = z.output<typeof webhookEventSchema>;
