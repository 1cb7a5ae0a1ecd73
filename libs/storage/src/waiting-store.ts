/**
 * {@link WaitingObjectStore}: an {@link ObjectStore} that waits out outages of the store it wraps.
 * A call that finds the store unreachable (a {@link StoreUnavailableError}, thrown once the
 * adapter's own retries are spent) is tried again, with capped backoff, until the store answers:
 * a job waiting here keeps its queue lock and burns none of its attempts, and work resumes by
 * itself when the store is back. Every call's outcome also tells whether the store is reachable,
 * which the worker's health reports.
 */
import type { ObjectInfo, ObjectStore } from './store.ts';
import { backoffDelay, StoreUnavailableError } from './retry.ts';
import type { Readable } from 'node:stream';

export interface StoreAvailability {
  /** False from a call that found the store unreachable until the next call that reached it. */
  available: boolean;
  /** ISO time `available` last changed (or the store was created). */
  since: string;
  /** What the last failed call said, while unavailable. */
  reason?: string;
  /** Calls waiting for the store now. */
  waiting: number;
}

export interface WaitingStoreOptions {
  /** Backoff before the first retry of a call, doubled per retry (default 250 ms). */
  baseDelayMs?: number;
  /** Largest backoff between two tries of a call (default 5000 ms). */
  maxDelayMs?: number;
  /** Default: the system clock. */
  clock?: () => Date;
  /** Resolves after `ms`, or rejects once `signal` aborts. Default: a timer. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
  /** Called when the store becomes unavailable or available again. */
  onChange?: (availability: StoreAvailability) => void;
}

/** A timer that `signal` can cut short; its abort listener is removed either way (signals here live long). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export class WaitingObjectStore implements ObjectStore {
  private readonly closing = new AbortController();
  private state: StoreAvailability;
  private readonly clock: () => Date;

  constructor(
    readonly inner: ObjectStore,
    private readonly opts: WaitingStoreOptions = {},
  ) {
    this.clock = opts.clock ?? (() => new Date());
    this.state = { available: true, since: this.clock().toISOString(), waiting: 0 };
  }

  /** Whether the store answered the last call that reached it, and how many calls wait for it. */
  availability(): StoreAvailability {
    return { ...this.state };
  }

  /**
   * Stops waiting: calls waiting for the store now, and any that find it unreachable later, fail
   * with their StoreUnavailableError (a stopping worker hands such jobs back to the queue).
   */
  close(): void {
    this.closing.abort(new Error('object store closed'));
  }

  put(key: string, body: Uint8Array, contentType?: string): Promise<void> {
    return this.patiently(() => this.inner.put(key, body, contentType));
  }
  get(key: string): Promise<Uint8Array | null> {
    return this.patiently(() => this.inner.get(key));
  }
  getStream(key: string): Promise<Readable | null> {
    return this.patiently(() => this.inner.getStream(key));
  }
  head(key: string): Promise<ObjectInfo | null> {
    return this.patiently(() => this.inner.head(key));
  }
  list(prefix: string): Promise<ObjectInfo[]> {
    return this.patiently(() => this.inner.list(prefix));
  }
  deletePrefix(prefix: string): Promise<number> {
    return this.patiently(() => this.inner.deletePrefix(prefix));
  }
  // Signing is local: nothing to wait for.
  presignPut(key: string, seconds: number, contentType?: string): Promise<string> {
    return this.inner.presignPut(key, seconds, contentType);
  }
  presignGet(key: string, seconds: number): Promise<string> {
    return this.inner.presignGet(key, seconds);
  }

  /** One probe, no waiting; its outcome updates {@link availability}. */
  async ping(): Promise<void> {
    try {
      await this.inner.ping();
    } catch (e) {
      if (e instanceof StoreUnavailableError) this.mark(false, e.message);
      throw e;
    }
    this.mark(true);
  }

  private async patiently<T>(op: () => Promise<T>): Promise<T> {
    const pause = this.opts.sleep ?? sleep;
    const policy = { baseDelayMs: this.opts.baseDelayMs ?? 250, maxDelayMs: this.opts.maxDelayMs ?? 5000 };
    for (let retry = 1; ; retry++) {
      let value: T;
      try {
        value = await op();
      } catch (e) {
        if (!(e instanceof StoreUnavailableError) || this.closing.signal.aborted) throw e;
        this.mark(false, e.message);
        this.state.waiting++;
        try {
          await pause(backoffDelay(retry, policy, this.opts.random), this.closing.signal);
        } catch {
          throw e;
        } finally {
          this.state.waiting--;
        }
        continue;
      }
      this.mark(true);
      return value;
    }
  }

  private mark(available: boolean, reason?: string): void {
    if (available === this.state.available) {
      if (!available) this.state.reason = reason;
      return;
    }
    this.state = { available, since: this.clock().toISOString(), waiting: this.state.waiting, ...(available ? {} : { reason }) };
    this.opts.onChange?.(this.availability());
  }
}
