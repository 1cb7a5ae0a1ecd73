/** Starts one BullMQ Worker per queue of the job catalogue, each running its processor. */
import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import { cappedBackoff, JOBS, type JobName } from '@celfarm/jobs';
import type { JobProcessor } from './processors.ts';

/**
 * What to do after queue events no processor sees (see processors.ts `createFollowUps`). Errors
 * of a follow-up go to `onError`; a follow-up that never runs (the process died) is covered by
 * the reaper and by finalize.
 */
export interface QueueFollowUps {
  /** A job BullMQ failed, in this process — also one it failed without running it. */
  failed?: Partial<Record<JobName, (job: Job, error: Error) => Promise<void>>>;
  /** A job this process's stalled-job check handed back to the queue. */
  stalled?: Partial<Record<JobName, (jobId: string) => Promise<void>>>;
}

export interface QueueWorkerOptions {
  connection: ConnectionOptions;
  /** Redis key prefix of the queues (REDIS_PREFIX). */
  prefix: string;
  /** Job lock in ms (LOCK_DURATION_MS); BullMQ renews it at half this while a job runs. */
  lockDuration: number;
  /**
   * How many times a prepare or frame job may lose its worker (killed, or its lock expired) and
   * be handed to another; the next time BullMQ fails it (WORKER_LOST on the record). This is
   * FRAME_STALL_LIMIT, apart from FRAME_ATTEMPTS, which counts errors. Default 20.
   */
  stallLimit?: number;
  /** Stored on every job this worker processes. */
  name?: string;
  /** A failed attempt (the queue already has the error; this is for the log). */
  onFailed?: (queue: string, jobId: string | undefined, error: Error) => void;
  /** A job the stalled-job check of this process handed back to the queue (for the log). */
  onStalled?: (queue: string, jobId: string) => void;
  /** Connection-level errors; a Worker without an `error` listener would crash the process. */
  onError?: (queue: string, error: Error) => void;
  followUps?: QueueFollowUps;
}

/**
 * Frames run two at a time although the inference thread takes one job at a time: while one
 * frame samples there, the next frame's S3 fetch and image decode run here on the main thread,
 * so the GPU does not sit idle between frames. The second job simply waits in the host's queue
 * for the thread (its lock keeps being renewed, since this thread never blocks).
 */
const CONCURRENCY: Record<JobName, number> = { prepare: 1, frame: 2, finalize: 2 };

/**
 * finalize decides and records a shot's outcome and is cheap and idempotent: losing its worker
 * must never fail it (the shot would stay `running` for good), however often that happens.
 */
const FINALIZE_STALL_LIMIT = 1_000_000;

export const DEFAULT_STALL_LIMIT = 20;

export function startQueueWorkers(processors: Record<JobName, JobProcessor>, opts: QueueWorkerOptions): Worker[] {
  const names = Object.keys(JOBS) as JobName[];
  // Refuse to start with a job name that has no handler (jobs would sit in their queue forever).
  const missing = names.filter((n) => typeof processors[n] !== 'function');
  if (missing.length) throw new Error(`no processor for job ${missing.join(', ')}`);
  const backoffStrategy = cappedBackoff();
  return names.map((name) => {
    const queue = JOBS[name].queue;
    const worker = new Worker(queue, processors[name], {
      connection: opts.connection,
      prefix: opts.prefix,
      lockDuration: opts.lockDuration,
      // Look for stalled jobs (a worker killed mid-frame) as often as a lock can expire, so a
      // dead worker's frame is back in the queue within about two lock durations, not 30 s.
      stalledInterval: Math.min(30_000, opts.lockDuration),
      // Our decision, not BullMQ's default of 1 (which failed a frame the second time a worker
      // holding it died, without ever trying it again).
      maxStalledCount: name === 'finalize' ? FINALIZE_STALL_LIMIT : (opts.stallLimit ?? DEFAULT_STALL_LIMIT),
      concurrency: CONCURRENCY[name],
      name: opts.name,
      // finalize retries with capped exponential backoff (libs/jobs CAPPED_BACKOFF).
      settings: { backoffStrategy },
    });
    const followUp = (what: string, run: () => Promise<void>) => {
      run().catch((e: unknown) => opts.onError?.(queue, new Error(`after ${what}: ${e instanceof Error ? e.message : String(e)}`)));
    };
    worker.on('error', (err) => opts.onError?.(queue, err));
    worker.on('failed', (job, err) => {
      opts.onFailed?.(queue, job?.id, err);
      const after = opts.followUps?.failed?.[name];
      if (job && after) followUp(`job ${job.id} failed`, () => after(job, err));
    });
    worker.on('stalled', (jobId) => {
      opts.onStalled?.(queue, jobId);
      const after = opts.followUps?.stalled?.[name];
      if (after) followUp(`job ${jobId} stalled`, () => after(jobId));
    });
    return worker;
  });
}
