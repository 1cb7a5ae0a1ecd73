/** One delivery of a queue job, as the handlers see it, and when its failure is the last word. */
import type { Progress } from '@celfarm/pipeline';
import { isBadInput, isStoreUnavailable } from './errors.ts';

export interface Attempt {
  /** Queue job id (for the registry's `currentJob`). */
  jobId: string;
  /** This attempt, 1-based. */
  attempt: number;
  /** Attempts the queue allows in all; the last one records a transient failure as final. */
  attempts: number;
  /** Aborts the job from outside (not a shot cancellation: such an abort is retried). */
  signal?: AbortSignal;
}

export interface FrameAttempt extends Attempt {
  /** Publishes progress on the queue job (BullMQ `job.updateProgress`). */
  reportProgress(p: Progress): Promise<void>;
}

/**
 * True when `e` ends the job for good: bad input (no retry can fix it), or the last attempt. An
 * unreachable object store never does: such a job goes back to the queue to wait for it.
 */
export function isFinalFailure(e: unknown, attempt: Attempt): boolean {
  return !isStoreUnavailable(e) && (isBadInput(e) || attempt.attempt >= attempt.attempts);
}
