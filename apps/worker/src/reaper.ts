/**
 * The reaper: every period, frame records that say `active` while their job is not (the worker
 * holding it died; its job went back to the queue or was failed) are brought in line with the
 * job (see frame-fate.ts). BullMQ's `stalled` and `failed` events do this at once in the process
 * that sees them; the reaper is for when that process died too, or the event was missed.
 */
export interface ReaperOptions {
  /** One pass; resolves with the number of records fixed. */
  reap: () => Promise<number>;
  periodMs: number;
  /** A failed pass (Redis unreachable); the next period tries again. */
  onError?: (e: unknown) => void;
  /** A pass that fixed records. */
  onReaped?: (count: number) => void;
}

export class Reaper {
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<void> = Promise.resolve();
  private running = false;

  constructor(private readonly opts: ReaperOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      // One pass at a time: a slow Redis must not stack passes up.
      if (this.running) return;
      this.running = true;
      this.pass = this.opts
        .reap()
        .then(
          (n) => {
            if (n > 0) this.opts.onReaped?.(n);
          },
          (e: unknown) => this.opts.onError?.(e),
        )
        .finally(() => {
          this.running = false;
        });
    }, this.opts.periodMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.pass;
  }
}
