/** The worker's entry in the registry (ShotStore.heartbeat), refreshed every HEARTBEAT_MS. */
import type { ShotStore, WorkerInfo } from '@celfarm/jobs';

export interface HeartbeatOptions {
  store: Pick<ShotStore, 'heartbeat' | 'removeWorker'>;
  /** The fields that do not change while the worker lives. */
  identity: Pick<WorkerInfo, 'id' | 'host' | 'pid' | 'provider' | 'pack' | 'startedAt'>;
  status: () => Pick<WorkerInfo, 'currentJob' | 'framesDone'>;
  periodMs: number;
  clock?: () => Date;
  /** A failed beat (Redis unreachable); the next period tries again. */
  onError?: (e: unknown) => void;
}

export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(private readonly opts: HeartbeatOptions) {}

  /** Registers now, then every period. */
  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => {
      this.inFlight = this.beat().catch((e: unknown) => this.opts.onError?.(e));
    }, this.opts.periodMs);
  }

  beat(): Promise<void> {
    const now = (this.opts.clock ?? (() => new Date()))().toISOString();
    return this.opts.store.heartbeat({ ...this.opts.identity, ...this.opts.status(), lastSeen: now });
  }

  /** Stops beating and removes the worker from the registry. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.inFlight;
    await this.opts.store.removeWorker(this.opts.identity.id);
  }
}
