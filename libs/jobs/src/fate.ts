/**
 * A frame's record follows its job. BullMQ decides what happens to a job — a worker that dies
 * leaves it `active` until the stalled-job check hands it back to `waiting`, a job stalled more
 * than the queue allows is failed without running — and nothing of ours runs on the dead worker
 * to say so in the frame record. {@link frameFix} says what the record must become given what
 * the queue says of the job; the worker applies it on BullMQ's `stalled` and `failed` events, in
 * a periodic reaper, and in finalize, so no record is left `active` on a job that is not.
 */
import type { ErrorInfo, FrameRecord } from './records.ts';

/** What the queue knows of a frame's job, as far as the frame's record depends on it. */
export interface FrameJobView {
  /** BullMQ's state; `missing` when the job does not exist (removed, or never added). */
  state: 'waiting' | 'prioritized' | 'delayed' | 'active' | 'waiting-children' | 'completed' | 'failed' | 'missing' | 'unknown';
  /** BullMQ's `failedReason` of a failed job. */
  failedReason?: string;
  /** Attempts that ended in an error. */
  attemptsMade?: number;
}

/** Error code of a frame whose worker was lost (killed, or its lock expired) too many times. */
export const WORKER_LOST = 'WORKER_LOST';

/** BullMQ's failedReason for a job that stalled more often than the worker's `maxStalledCount`. */
export const STALLED_OUT_REASON = 'job stalled more than allowable limit';

export type FrameFix = { state: 'waiting' } | { state: 'failed'; error: ErrorInfo } | { state: 'cancelled' };

/** Job states from which the job will still run in its round. */
const PENDING: readonly FrameJobView['state'][] = ['waiting', 'prioritized', 'delayed', 'waiting-children'];

/**
 * The change a frame record needs to agree with its job, or null when it agrees (or when the job
 * is active: whoever holds it owns the record). A record that says `active` while its job waits
 * to run again goes back to `waiting`; a record that is not finished while its job will never run
 * again in this round becomes `failed` with a code (`WORKER_LOST` when the worker, not the frame,
 * was the problem: retryable like any failure), or `cancelled` when its shot was cancelled.
 */
export function frameFix(record: FrameRecord, job: FrameJobView, shot: { cancelled: boolean }): FrameFix | null {
  if (record.state === 'completed' || record.state === 'failed' || record.state === 'cancelled') return null;
  if (job.state === 'active' || job.state === 'unknown') return null;
  if (PENDING.includes(job.state)) return record.state === 'active' ? { state: 'waiting' } : null;
  if (shot.cancelled) return { state: 'cancelled' };
  return { state: 'failed', error: lostError(record, job) };
}

function lostError(record: FrameRecord, job: FrameJobView): ErrorInfo {
  if (job.state === 'failed') {
    if (job.failedReason?.includes(STALLED_OUT_REASON)) {
      return { code: WORKER_LOST, message: 'the frame lost its worker (killed, or its lock expired) more often than FRAME_STALL_LIMIT allows' };
    }
    // The processor records its own failures; this is one it could not record (e.g. Redis was down).
    return record.error ?? { code: 'INTERNAL', message: job.failedReason ?? 'the frame job failed' };
  }
  if (job.state === 'completed') return { code: WORKER_LOST, message: 'the frame job ended without recording the frame' };
  return { code: WORKER_LOST, message: 'the frame job is gone' };
}
