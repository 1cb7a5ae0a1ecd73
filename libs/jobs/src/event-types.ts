/**
 * Farm events as data: their types and the JSON every consumer reads (the dashboard's live
 * stream, webhook subscribers, the event bus's own history). Imports only zod, so the wire
 * contract re-exports it for the browser as `@celfarm/jobs/event-types`; the bus that publishes
 * them (Redis, node:crypto) is events.ts.
 */
import { z } from 'zod';

export const EVENT_TYPES = [
  'shot.created',
  'shot.started',
  'frame.completed',
  'frame.failed',
  /** A completed frame first past a QA threshold (once per frame and round; data: flagged, scores). */
  'frame.flagged',
  'shot.completed',
  'shot.failed',
  'shot.cancelled',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** A farm event: streamed to the dashboard (`GET /v1/live`, `event: farm`) and POSTed to webhooks. */
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
