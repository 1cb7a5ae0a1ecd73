/**
 * Watches one frame while it runs on the inference thread: forwards sampler progress to the
 * queue and the shot record (throttled), and turns "the shot was cancelled" into an AbortSignal
 * the host honours at the next step boundary.
 *
 * The frame's signal is a plain AbortController's, fed by a listener on the outside signal that
 * {@link FrameWatch.stop} removes. Not `AbortSignal.any()`: in Node 20 a combined signal that has
 * an `abort` listener (the host adds one per frame and never removes it) is held in a
 * process-wide set until it aborts — for a frame that finishes normally, forever — and with it
 * everything the listener reaches (the frame's request and its reference context): ~115 kB per
 * frame, a worker's whole heap in a few weeks.
 */
import type { Progress } from '@celfarm/pipeline';

export interface FrameWatchOptions {
  clock: () => Date;
  /** Least milliseconds between progress writes (default 100: at most 10 per second per frame). */
  progressIntervalMs?: number;
  /** Milliseconds between shot-state checks (default 500). */
  cancelCheckMs?: number;
  /** True when the frame's shot has been cancelled. */
  isCancelled: () => Promise<boolean>;
  /** Writes one progress report (queue job progress and the shot record). */
  write: (p: Progress) => Promise<void>;
  /** An outside abort (e.g. BullMQ cancelling the job); not a shot cancellation. */
  signal?: AbortSignal;
}

export class FrameWatch {
  /** Fires when the shot is cancelled or the outside signal aborts. */
  readonly signal: AbortSignal;
  /** True once the shot was seen cancelled (as opposed to an outside abort). */
  shotCancelled = false;
  /** The last progress report received (written or not). */
  last: Progress | undefined;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private lastWrite = Number.NEGATIVE_INFINITY;
  private writes: Promise<void> = Promise.resolve();
  private checking = false;

  constructor(private readonly opts: FrameWatchOptions) {
    this.signal = this.controller.signal;
    if (opts.signal?.aborted) this.controller.abort(opts.signal.reason);
    else opts.signal?.addEventListener('abort', this.onOutsideAbort, { once: true });
    this.timer = setInterval(() => this.check(), opts.cancelCheckMs ?? 500);
    this.timer.unref();
  }

  private readonly onOutsideAbort = (): void => {
    this.controller.abort(this.opts.signal?.reason);
  };

  /** The host's progress callback. */
  readonly onProgress = (p: Progress): void => {
    this.last = p;
    const now = this.opts.clock().getTime();
    const lastStep = p.stage === 'sample' && p.step === p.steps;
    if (!lastStep && now - this.lastWrite < (this.opts.progressIntervalMs ?? 100)) return;
    this.lastWrite = now;
    // Progress is advisory: a failed write must not fail a frame whose pixels are fine. A Redis
    // outage still surfaces through the frame's state writes, which are not swallowed.
    this.writes = this.writes.then(() => this.opts.write(p)).catch(() => undefined);
  };

  private check(): void {
    if (this.checking || this.signal.aborted) return;
    this.checking = true;
    void this.opts
      .isCancelled()
      .then(
        (cancelled) => {
          if (!cancelled) return;
          this.shotCancelled = true;
          this.controller.abort(new Error('shot cancelled'));
        },
        // A failed check is retried at the next tick; cancellation is best effort by design.
        () => undefined,
      )
      .finally(() => {
        this.checking = false;
      });
  }

  /** Stops the checks, lets go of the outside signal, and waits for the progress writes in flight. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.opts.signal?.removeEventListener('abort', this.onOutsideAbort);
    await this.writes;
  }
}
