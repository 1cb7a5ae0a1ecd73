/**
 * The live feed behind `GET /v1/live`. One dedicated subscriber connection per API process
 * listens on the EventBus channel and hands each farm event to the open streams of its project;
 * each project with an open stream gets one shot snapshot per second, computed once and shared
 * by all of that project's streams (so ten open dashboards cost one Redis scan, not ten).
 */
import { Inject, Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import type { Config } from '@celfarm/config';
import { connectRedis, EventBus, farmEventSchema, type FarmEvent, type RedisClient, type ShotStore } from '@celfarm/jobs';
import { mapLimit } from '../core/concurrency.ts';
import { CLOCK, CONFIG, SHOT_STORE } from '../core/tokens.ts';
import { isLive, liveShot, type LiveShot } from './snapshot.ts';

/** What one open stream receives. */
export interface LiveListener {
  event(event: FarmEvent): void;
  /** `json` is the serialized {@link LiveSnapshot}. */
  snapshot(json: string): void;
  /** The API is shutting down: end the stream. */
  close(): void;
}

export interface LiveTiming {
  /** Period of the shot snapshots. Default 1000 ms. */
  snapshotMs: number;
  /** An unchanged snapshot is sent again after this long anyway. Default 10 000 ms. */
  resendMs: number;
  /** Finished shots stay in the snapshot this long after their last change. Default 30 000 ms. */
  recentMs: number;
  /** Only the project's newest shots are scanned for unfinished ones. Default 100. */
  scanShots: number;
}

export const DEFAULT_LIVE_TIMING: LiveTiming = { snapshotMs: 1000, resendMs: 10_000, recentMs: 30_000, scanShots: 100 };

interface Subscription {
  listener: LiveListener;
  lastBody?: string;
  lastSentAt: number;
}

interface ProjectFeed {
  subs: Set<Subscription>;
  timer: NodeJS.Timeout;
  busy: boolean;
  last?: { at: string; body: string };
}

@Injectable()
export class LiveHub implements BeforeApplicationShutdown {
  private readonly logger = new Logger('live');
  private subscriber?: RedisClient;
  private readonly feeds = new Map<string, ProjectFeed>();
  private lastError = '';
  readonly timing: LiveTiming = DEFAULT_LIVE_TIMING;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SHOT_STORE) private readonly store: ShotStore,
    @Inject(CLOCK) private readonly clock: () => Date,
  ) {}

  /** Starts feeding `listener` with `project`'s events and snapshots; returns the unsubscribe. */
  subscribe(project: string, listener: LiveListener): () => void {
    this.ensureSubscriber();
    let feed = this.feeds.get(project);
    if (!feed) {
      const created: ProjectFeed = { subs: new Set(), busy: false, timer: setInterval(() => void this.tick(project, created), this.timing.snapshotMs) };
      feed = created;
      this.feeds.set(project, feed);
    }
    const sub: Subscription = { listener, lastSentAt: 0 };
    feed.subs.add(sub);
    // The first snapshot goes out at once: the last one computed, or a fresh one.
    if (feed.last) this.send(sub, feed.last, this.clock().getTime());
    else void this.tick(project, feed);
    return () => {
      const f = this.feeds.get(project);
      if (!f) return;
      f.subs.delete(sub);
      if (f.subs.size === 0) {
        clearInterval(f.timer);
        this.feeds.delete(project);
      }
    };
  }

  /** Open streams, all projects together. */
  get streams(): number {
    let n = 0;
    for (const f of this.feeds.values()) n += f.subs.size;
    return n;
  }

  /** Ends every open stream before the HTTP server drains: an SSE response never ends by itself. */
  beforeApplicationShutdown(): void {
    for (const feed of this.feeds.values()) {
      clearInterval(feed.timer);
      for (const sub of feed.subs) sub.listener.close();
    }
    this.feeds.clear();
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }

  private ensureSubscriber(): void {
    if (this.subscriber) return;
    // On a Cluster, ioredis subscribes on one node; Redis forwards every PUBLISH to all of them.
    const sub = connectRedis(this.config);
    const channel = new EventBus(sub, this.config.REDIS_PREFIX).channel;
    sub.on('error', (e: Error) => {
      // ioredis reconnects (and resubscribes) by itself; say so once per distinct error.
      if (e.message !== this.lastError) this.logger.warn(`event subscriber: ${e.message}`);
      this.lastError = e.message;
    });
    sub.on('message', (ch: string, message: string) => {
      if (ch === channel) this.dispatch(message);
    });
    sub.subscribe(channel).catch((e: unknown) => this.logger.warn(`subscribing to ${channel}: ${(e as Error).message}`));
    this.subscriber = sub;
  }

  private dispatch(message: string): void {
    let event: FarmEvent;
    try {
      event = farmEventSchema.parse(JSON.parse(message));
    } catch (e) {
      this.logger.warn(`ignoring a malformed farm event: ${(e as Error).message}`);
      return;
    }
    const feed = this.feeds.get(event.project);
    if (!feed) return;
    for (const sub of feed.subs) sub.listener.event(event);
  }

  private async tick(project: string, feed: ProjectFeed): Promise<void> {
    if (feed.busy) return;
    feed.busy = true;
    try {
      const shots = await this.snapshot(project);
      feed.last = { at: this.clock().toISOString(), body: JSON.stringify(shots) };
      const now = this.clock().getTime();
      for (const sub of feed.subs) this.send(sub, feed.last, now);
    } catch (e) {
      // Redis away: streams stay open and catch up on the next tick.
      const message = (e as Error).message;
      if (message !== this.lastError) this.logger.warn(`live snapshot of ${project}: ${message}`);
      this.lastError = message;
    } finally {
      feed.busy = false;
    }
  }

  private send(sub: Subscription, last: { at: string; body: string }, now: number): void {
    if (sub.lastBody === last.body && now - sub.lastSentAt < this.timing.resendMs) return;
    sub.lastBody = last.body;
    sub.lastSentAt = now;
    sub.listener.snapshot(`{"at":${JSON.stringify(last.at)},"shots":${last.body}}`);
  }

  private async snapshot(project: string): Promise<LiveShot[]> {
    const now = this.clock().getTime();
    const [{ shots }, workers] = await Promise.all([
      this.store.list({ project, limit: this.timing.scanShots }),
      this.store.workers(3 * this.config.HEARTBEAT_MS),
    ]);
    const live = shots.filter((s) => isLive(s, now, this.timing.recentMs));
    return mapLimit(live, 8, async (s) => liveShot(s, await this.store.digest(s.id, s.frameCount), workers.length));
  }
}
