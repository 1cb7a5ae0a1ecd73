/**
 * Farm events: what webhooks deliver and the dashboard streams. Each event has a stable id
 * derived from what it is about (type, shot, frame, retry round), and the bus publishes an id at
 * most once — so a frame that runs twice (a worker died mid-frame) still yields one
 * `frame.completed`, and webhook deliveries keyed by event id are never doubled.
 */
import { createHash } from 'node:crypto';
import type { ChainableCommander } from 'ioredis';
import { farmEventSchema, type EventType, type FarmEvent } from './event-types.ts';
import type { RedisClient } from './redis.ts';

export { EVENT_TYPES, farmEventSchema, type EventType, type FarmEvent } from './event-types.ts';

/** What an event is about: its shot (and frame), in which retry round. */
export interface EventRef {
  project: string;
  shotId: string;
  frame?: number;
  round?: number;
}

export function eventId(type: EventType, shotId: string, frame?: number, round = 0): string {
  const h = createHash('sha256').update(`${type}|${shotId}|${frame ?? ''}|${round}`).digest('hex');
  return `evt_${h.slice(0, 24)}`;
}

const DEDUPE_TTL_S = 7 * 24 * 3600;
/** KEYS: dedupe key, project stream, outbox, channel; ARGV: ttl, stream maxlen, outbox maxlen, json. */
const PUBLISH_ONCE = `
if not redis.call('SET', KEYS[1], '1', 'EX', ARGV[1], 'NX') then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'event', ARGV[4])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'event', ARGV[4])
redis.call('PUBLISH', KEYS[4], ARGV[4])
return 1`;
const STREAM_MAXLEN = 10_000;
const OUTBOX_MAXLEN = 100_000;

/**
 * The farm-wide outbox stream `{prefix}:events:_outbox`: every new event of every project, for
 * consumers that must see each one (the webhook dispatcher reads it with a consumer group). The
 * leading `_` keeps it apart from the project streams: a project id starts with a letter or digit.
 */
export const outboxKey = (prefix: string): string => `${prefix}:events:_outbox`;

/**
 * Publishes events: a SET NX on the id (kept 7 days) makes publication idempotent; new events go,
 * in one MULTI, to the project's Redis stream `{prefix}:events:{project}` (capped, for history
 * and the dashboard), to the farm-wide outbox stream (capped generously; the webhook dispatcher
 * fans it out, so an event on the bus is never without its deliveries) and to the pub/sub
 * channel `{prefix}:events` (live listeners such as SSE).
 */
export class EventBus {
  constructor(
    readonly redis: RedisClient,
    readonly prefix = 'celfarm',
    private readonly clock: () => Date = () => new Date(),
  ) {}

  get channel(): string {
    return `${this.prefix}:events`;
  }

  streamKey(project: string): string {
    return `${this.prefix}:events:${project}`;
  }

  /** The farm-wide outbox stream (see {@link outboxKey}). */
  get outboxKey(): string {
    return outboxKey(this.prefix);
  }

  /** Publishes `event` unless its id was published before; returns the event when it is new. */
  async publish(type: EventType, ref: EventRef, data: Record<string, unknown> = {}): Promise<FarmEvent | null> {
    const event = this.event(type, ref, data);
    // The once-per-id check and every write happen in one script: a process that dies mid-publish
    // leaves either nothing (a later publish of the same id goes through) or the whole event.
    const fresh = await this.redis.eval(PUBLISH_ONCE, 4, ...this.scriptArgs(event));
    return fresh === 1 ? event : null;
  }

  /**
   * Queues the same publication on `multi`, a MULTI of the caller's: the event exists exactly
   * when the caller's other writes do (ShotStore announces a shot this way as it creates it).
   */
  stage(multi: ChainableCommander, type: EventType, ref: EventRef, data: Record<string, unknown> = {}): FarmEvent {
    const event = this.event(type, ref, data);
    multi.eval(PUBLISH_ONCE, 4, ...this.scriptArgs(event));
    return event;
  }

  private event(type: EventType, ref: EventRef, data: Record<string, unknown>): FarmEvent {
    return {
      id: eventId(type, ref.shotId, ref.frame, ref.round ?? 0),
      type,
      project: ref.project,
      shotId: ref.shotId,
      ...(ref.frame !== undefined ? { frame: ref.frame } : {}),
      createdAt: this.clock().toISOString(),
      data,
    };
  }

  /** KEYS then ARGV of {@link PUBLISH_ONCE}. */
  private scriptArgs(event: FarmEvent): (string | number)[] {
    return [
      `${this.prefix}:event:${event.id}`,
      this.streamKey(event.project),
      this.outboxKey,
      this.channel,
      DEDUPE_TTL_S,
      STREAM_MAXLEN,
      OUTBOX_MAXLEN,
      JSON.stringify(event),
    ];
  }

  /** The project's most recent events, newest last. */
  async recent(project: string, count = 100): Promise<FarmEvent[]> {
    const rows = await this.redis.xrevrange(this.streamKey(project), '+', '-', 'COUNT', count);
    return rows.map(([, fields]) => farmEventSchema.parse(JSON.parse(fields[1]!))).reverse();
  }
}
