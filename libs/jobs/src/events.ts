/**
 * Farm events: what webhooks deliver and the dashboard streams. Each event has a stable id
 * derived from what it is about (type, shot, frame, retry round), and the bus publishes an id at
 * most once — so a frame that runs twice (a worker died mid-frame) still yields one
 * `frame.completed`, and webhook deliveries keyed by event id are never doubled.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
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
  /** Stable id: `evt_` + 24 hex of sha256(type, shot, frame, round). */
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
export type FarmEvent = z.infer<typeof farmEventSchema>;

export function eventId(type: EventType, shotId: string, frame?: number, round = 0): string {
  const h = createHash('sha256').update(`${type}|${shotId}|${frame ?? ''}|${round}`).digest('hex');
  return `evt_${h.slice(0, 24)}`;
}

const DEDUPE_TTL_S = 7 * 24 * 3600;
const STREAM_MAXLEN = 10_000;

/**
 * Publishes events: a SET NX on the id (kept 7 days) makes publication idempotent; new events go
 * to the project's Redis stream `{prefix}:events:{project}` (capped, for history and the
 * dashboard) and to the pub/sub channel `{prefix}:events` (live listeners). Listeners (webhook
 * fan-out, SSE) subscribe to the channel.
 */
export class EventBus {
  constructor(
    readonly redis: Redis,
    readonly prefix = 'celfarm',
    private readonly clock: () => Date = () => new Date(),
  ) {}

  get channel(): string {
    return `${this.prefix}:events`;
  }

  streamKey(project: string): string {
    return `${this.prefix}:events:${project}`;
  }

  /** Publishes `event` unless its id was published before; returns the event when it is new. */
  async publish(
    type: EventType,
    ref: { project: string; shotId: string; frame?: number; round?: number },
    data: Record<string, unknown> = {},
  ): Promise<FarmEvent | null> {
    const id = eventId(type, ref.shotId, ref.frame, ref.round ?? 0);
    const fresh = await this.redis.set(`${this.prefix}:event:${id}`, '1', 'EX', DEDUPE_TTL_S, 'NX');
    if (fresh !== 'OK') return null;
    const event: FarmEvent = {
      id,
      type,
      project: ref.project,
      shotId: ref.shotId,
      ...(ref.frame !== undefined ? { frame: ref.frame } : {}),
      createdAt: this.clock().toISOString(),
      data,
    };
    const json = JSON.stringify(event);
    await this.redis
      .multi()
      .xadd(this.streamKey(ref.project), 'MAXLEN', '~', STREAM_MAXLEN, '*', 'event', json)
      .publish(this.channel, json)
      .exec();
    return event;
  }

  /** The project's most recent events, newest last. */
  async recent(project: string, count = 100): Promise<FarmEvent[]> {
    const rows = await this.redis.xrevrange(this.streamKey(project), '+', '-', 'COUNT', count);
    return rows.map(([, fields]) => farmEventSchema.parse(JSON.parse(fields[1]!))).reverse();
  }
}
