/**
 * Reliable fan-out from the event outbox. The event bus XADDs every new event to the farm-wide
 * outbox stream in the same MULTI as its project stream, so an event that exists has its outbox
 * entry; publishers do nothing more. The dispatcher reads the outbox with a Redis consumer group,
 * fans each event out ({@link WebhookFanout}: job ids `${event.id}-${subscription.id}` make a
 * repeated fan-out add nothing) and only then XACKs it. An entry read but not acked — the process
 * died, the fan-out failed — stays pending: its consumer reads it again on start and at every
 * recovery pass, and any dispatcher claims it (XAUTOCLAIM) once it has been idle for
 * `claimIdleMs`, which is how a dead consumer's entries go out. So every published event is
 * fanned out at least once, and delivered once per matching subscription.
 */
import { hostname } from 'node:os';
import { duplicateRedis, farmEventSchema, outboxKey, type EventType, type FarmEvent, type RedisClient } from '@celfarm/jobs';
import type { WebhookFanout } from './fanout.ts';

/** Publishes farm events (what FarmWorker and the API's shot service are given: the EventBus). */
export interface EventPublisher {
  publish(
    type: EventType,
    ref: { project: string; shotId: string; frame?: number; round?: number },
    data?: Record<string, unknown>,
  ): Promise<FarmEvent | null>;
}

/** The consumer group of the outbox that fans events out to webhooks. */
export const DISPATCH_GROUP = 'webhooks';

export interface DispatcherOptions {
  /**
   * A connection to Redis; the dispatcher duplicates it for its own blocking reads (that
   * duplicate is its alone and closed by `stop`; this one is left as it is).
   */
  redis: RedisClient;
  /** Redis key prefix (REDIS_PREFIX): the outbox is `{prefix}:events:_outbox`. */
  prefix: string;
  /** Consumer name in the group; default `${hostname}-${pid}`. Unique per running dispatcher. */
  consumer?: string;
  /** Default {@link DISPATCH_GROUP}. */
  group?: string;
  /** Longest wait of one XREADGROUP BLOCK (ms); default 5000. */
  blockMs?: number;
  /** Entries per read or claim; default 100. */
  batch?: number;
  /** A pending entry idle this long (ms) is claimed from whichever consumer holds it; default 30 000. */
  claimIdleMs?: number;
  /** How often pending entries are looked at again while running (ms); default `claimIdleMs`. */
  recoverEveryMs?: number;
  /**
   * First wait (ms) before this consumer tries again the entries whose fan-out failed (Redis
   * away); doubles up to `recoverEveryMs` while they keep failing. Default 1000.
   */
  retryFailedMs?: number;
  /** Errors: Redis unreachable, a fan-out that failed (its entry stays pending), a bad entry. */
  onError?: (error: Error) => void;
}

type Entry = [id: string, fields: string[] | null];

class Stopped extends Error {
  override readonly name = 'Stopped';
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

export class WebhookDispatcher {
  readonly key: string;
  readonly group: string;
  readonly consumer: string;
  private readonly reader: RedisClient;
  private readonly blockMs: number;
  private readonly batch: number;
  private readonly claimIdleMs: number;
  private readonly recoverEveryMs: number;
  private loop?: Promise<void>;
  private stopping = false;
  /** A batch is being fanned out and acked: what `stop` gives a grace period to. */
  private handling = false;
  private wake?: () => void;
  /** Rejecters of the calls in flight (see `call`); `aborted` once `stop` gives up waiting. */
  private readonly inFlight = new Set<(e: Error) => void>();
  private aborted = false;
  /** Entries of this consumer whose fan-out failed in the last batch: retried soon, not in 30 s. */
  private failedFanouts = 0;
  /**
   * The connection came back: a read whose reply was lost with it left entries pending on this
   * consumer that it never saw, so its own pending entries are read again at once.
   */
  private reconnected = false;

  constructor(
    private readonly fanout: Pick<WebhookFanout, 'fanout'>,
    private readonly opts: DispatcherOptions,
  ) {
    this.key = outboxKey(opts.prefix);
    this.group = opts.group ?? DISPATCH_GROUP;
    this.consumer = opts.consumer ?? `${hostname()}-${process.pid}`;
    this.blockMs = opts.blockMs ?? 5000;
    this.batch = opts.batch ?? 100;
    this.claimIdleMs = opts.claimIdleMs ?? 30_000;
    this.recoverEveryMs = opts.recoverEveryMs ?? this.claimIdleMs;
    // Blocking reads wait out a Redis restart instead of failing after N retries.
    this.reader = duplicateRedis(opts.redis, { maxRetriesPerRequest: null, lazyConnect: true });
    this.reader.on('error', (e: Error) => this.report(new Error(`outbox connection: ${e.message}`)));
    this.reader.on('ready', () => (this.reconnected = true));
  }

  /**
   * `p`, unless the dispatcher is stopped first. A command queued on a connection that is down
   * settles only once Redis is back (the connection retries forever), so the loop never waits
   * on one alone.
   */
  private call<T>(p: Promise<T>): Promise<T> {
    if (this.aborted) {
      p.catch(() => undefined);
      return Promise.reject(new Stopped('stopped'));
    }
    return new Promise<T>((resolve, reject) => {
      this.inFlight.add(reject);
      void p.then(resolve, reject).finally(() => this.inFlight.delete(reject));
    });
  }

  private abort(): void {
    this.aborted = true;
    for (const reject of this.inFlight) reject(new Stopped('stopped'));
    this.inFlight.clear();
  }

  /**
   * Creates the consumer group (with the stream) unless it exists. It starts at the beginning of
   * the outbox, not at `$`: everything in the outbox was published to be fanned out, including
   * what came before the first dispatcher ever started.
   */
  async ensureGroup(): Promise<void> {
    try {
      await this.call(this.reader.xgroup('CREATE', this.key, this.group, '0', 'MKSTREAM'));
    } catch (e) {
      if (!/BUSYGROUP/.test(messageOf(e))) throw e;
    }
  }

  /**
   * Starts reading in the background: the group is created if need be, pending entries are taken
   * up, then new ones are read. Errors go to `onError` and the loop goes on. A stopped dispatcher
   * does not start again (its connection is closed): make a new one.
   */
  start(): void {
    if (this.stopping) throw new Error('this dispatcher was stopped; create a new one');
    this.loop ??= this.run();
  }

  /**
   * Stops reading and closes the dispatcher's connection. A blocking read is cut short at once; a
   * fan-out in progress gets up to `graceMs` to finish and be acked. Whatever is cut short stays
   * pending in the group and is taken up again (by this consumer name, or claimed by another).
   */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    this.wake?.();
    if (this.loop && this.handling) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.loop, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    this.abort();
    await this.loop;
    this.reader.disconnect();
  }

  private report(e: unknown): void {
    this.opts.onError?.(asError(e));
  }

  private async run(): Promise<void> {
    let groupReady = false;
    let nextRecovery = 0;
    let failures = 0;
    /** Recovery passes in a row in which a fan-out failed. */
    let retryStreak = 0;
    while (!this.stopping) {
      try {
        if (!groupReady) {
          await this.ensureGroup();
          groupReady = true;
        }
        if (this.reconnected) {
          this.reconnected = false;
          nextRecovery = 0;
        }
        if (Date.now() >= nextRecovery) {
          this.failedFanouts = 0;
          await this.recover();
          retryStreak = this.failedFanouts > 0 ? retryStreak + 1 : 0;
          nextRecovery = Date.now() + (retryStreak > 0 ? this.retryDelay(retryStreak) : this.recoverEveryMs);
          this.failedFanouts = 0;
        }
        if (this.stopping) break;
        const block = Math.max(1, Math.min(this.blockMs, nextRecovery - Date.now()));
        const reply = await this.call(this.reader.xreadgroup('GROUP', this.group, this.consumer, 'COUNT', this.batch, 'BLOCK', block, 'STREAMS', this.key, '>'));
        await this.handle(reply?.[0]?.[1] ?? []);
        failures = 0;
        // Our own pending entries are read again by the next recovery pass: bring it forward.
        if (this.failedFanouts > 0) nextRecovery = Math.min(nextRecovery, Date.now() + this.retryDelay(retryStreak + 1));
      } catch (e) {
        if (this.stopping || e instanceof Stopped) break;
        // The group is gone (Redis lost its data, someone deleted it): create it again.
        if (/NOGROUP/.test(messageOf(e))) {
          groupReady = false;
          nextRecovery = 0;
        }
        this.report(e);
        failures++;
        await this.pause(Math.min(5000, 100 * 2 ** Math.min(failures, 6)));
      }
    }
  }

  /** Wait before the `n`th retry of failed fan-outs: doubling from `retryFailedMs`, capped. */
  private retryDelay(n: number): number {
    return Math.min(this.recoverEveryMs, (this.opts.retryFailedMs ?? 1000) * 2 ** Math.min(n - 1, 16));
  }

  /** Waits `ms`, or less when `stop` is called meanwhile. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /**
   * Takes up what is pending: first this consumer's own entries (read before a restart under
   * the same name, or whose fan-out failed), then any consumer's entries idle for `claimIdleMs`.
   */
  private async recover(): Promise<void> {
    let after = '0';
    while (!this.stopping) {
      const reply = await this.call(this.reader.xreadgroup('GROUP', this.group, this.consumer, 'COUNT', this.batch, 'STREAMS', this.key, after));
      const entries = reply?.[0]?.[1] ?? [];
      if (entries.length === 0) break;
      await this.handle(entries);
      after = entries.at(-1)![0];
    }
    let cursor = '0-0';
    while (!this.stopping) {
      // [next cursor, claimed entries, ids of entries no longer in the stream (dropped from the PEL)]
      const [next, claimed, deleted] = (await this.call(this.reader.xautoclaim(this.key, this.group, this.consumer, this.claimIdleMs, cursor, 'COUNT', this.batch))) as [
        string,
        Entry[],
        string[]?,
      ];
      if (deleted?.length) this.report(new Error(`outbox entries ${deleted.join(', ')} were trimmed before they were fanned out`));
      await this.handle(claimed);
      if (next === '0-0') break;
      cursor = next;
    }
  }

  /** Fans the entries out (concurrently) and acks those that went out or can never go out. */
  private async handle(entries: Entry[]): Promise<void> {
    if (entries.length === 0) return;
    this.handling = true;
    try {
      await this.fanOutAndAck(entries);
    } finally {
      this.handling = false;
    }
  }

  private async fanOutAndAck(entries: Entry[]): Promise<void> {
    const done = await this.call(Promise.all(
      entries.map(async ([id, fields]): Promise<string | null> => {
        if (!fields) {
          this.report(new Error(`outbox entry ${id} was trimmed before it was fanned out`));
          return id;
        }
        let event: FarmEvent;
        try {
          const i = fields.indexOf('event');
          event = farmEventSchema.parse(JSON.parse(i >= 0 && i % 2 === 0 ? fields[i + 1]! : ''));
        } catch (e) {
          this.report(new Error(`outbox entry ${id} is not an event, dropped: ${messageOf(e)}`));
          return id;
        }
        try {
          await this.fanout.fanout(event);
          return id;
        } catch (e) {
          this.report(new Error(`fan-out of ${event.id} (outbox entry ${id}) failed, kept pending: ${messageOf(e)}`));
          this.failedFanouts++;
          return null;
        }
      }),
    ));
    const acks = done.filter((id): id is string => id !== null);
    if (acks.length) await this.call(this.reader.xack(this.key, this.group, ...acks));
  }
}
