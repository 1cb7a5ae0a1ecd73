/** Starts one BullMQ Worker per queue of the job catalogue, each running its processor. */
import { Worker, type ConnectionOptions } from 'bullmq';
import { JOBS, type JobName } from '@celfarm/jobs';
import type { JobProcessor } from './processors.ts';

export interface QueueWorkerOptions {
  connection: ConnectionOptions;
  /** Redis key prefix of the queues (REDIS_PREFIX). */
  prefix: string;
  /** Job lock in ms (LOCK_DURATION_MS); BullMQ renews it at half this while a job runs. */
  lockDuration: number;
  /** Stored on every job this worker processes. */
  name?: string;
  /** A failed attempt (the queue already has the error; this is for the log). */
  onFailed?: (queue: string, jobId: string | undefined, error: Error) => void;
  /** Connection-level errors; a Worker without an `error` listener would crash the process. */
  onError?: (queue: string, error: Error) => void;
}

/**
 * Frames run two at a time although the inference thread takes one job at a time: while one
 * frame samples there, the next frame's S3 fetch and image decode run here on the main thread,
 * so the GPU does not sit idle between frames. The second job simply waits in the host's queue
 * for the thread (its lock keeps being renewed, since this thread never blocks).
 */
const CONCURRENCY: Record<JobName, number> = { prepare: 1, frame: 2, finalize: 2 };

export function startQueueWorkers(processors: Record<JobName, JobProcessor>, opts: QueueWorkerOptions): Worker[] {
  const names = Object.keys(JOBS) as JobName[];
  // Refuse to start with a job name that has no handler (jobs would sit in their queue forever).
  const missing = names.filter((n) => typeof processors[n] !== 'function');
  if (missing.length) throw new Error(`no processor for job ${missing.join(', ')}`);
  return names.map((name) => {
    const queue = JOBS[name].queue;
    const worker = new Worker(queue, processors[name], {
      connection: opts.connection,
      prefix: opts.prefix,
      lockDuration: opts.lockDuration,
      // Look for stalled jobs (a worker killed mid-frame) as often as a lock can expire, so a
      // dead worker's frame is back in the queue within about two lock durations, not 30 s.
      stalledInterval: Math.min(30_000, opts.lockDuration),
      concurrency: CONCURRENCY[name],
      name: opts.name,
    });
    worker.on('error', (err) => opts.onError?.(queue, err));
    worker.on('failed', (job, err) => opts.onFailed?.(queue, job?.id, err));
    return worker;
  });
}
