/**
 * The BullMQ processors: thin adapters that validate the payload against the job catalogue, call
 * one {@link FarmWorker} method and hand its errors to the queue — bad input as
 * UnrecoverableError (no retries), an unreachable object store as a delay that spends no attempt,
 * everything else unchanged (retried with backoff). Nothing is caught and logged here.
 *
 * And the follow-ups of queue events no processor sees: a job BullMQ failed without running it,
 * a job its stalled-job check handed back to the queue. They bring the records in line.
 */
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { JOBS, JobPayloadError, parseJobData, type FarmQueues, type JobData, type JobName } from '@celfarm/jobs';
import { ChainNotReadyError, errorInfo, isBadInput, isStoreUnavailable } from './errors.ts';
import type { Attempt } from './attempt.ts';
import type { FarmWorker } from './farm-worker.ts';
import type { QueueFollowUps } from './queue-workers.ts';

export type JobProcessor = (job: Job, token?: string, signal?: AbortSignal) => Promise<unknown>;

export interface ProcessorOptions {
  /**
   * How long a job waits in `delayed` when it was handed back because the object store could
   * not be reached (default 1000 ms). Such jobs spend no attempt.
   */
  storeRetryMs?: number;
  /**
   * How long a frame of a chained shot (`referenceChain: previous`) waits in `delayed` before it
   * looks again for its link's reference frame (default 1000 ms). Such jobs spend no attempt.
   */
  chainRetryMs?: number;
  /** Default: Date.now. */
  now?: () => number;
}

/** The error the queue should see: bad input becomes an UnrecoverableError carrying its code. */
export function toQueueError(e: unknown): unknown {
  if (!isBadInput(e)) return e;
  const { code, field, message } = errorInfo(e);
  const err = new UnrecoverableError(`${code}${field ? ` (${field})` : ''}: ${message}`);
  err.cause = e;
  return err;
}

function adapter<N extends JobName>(
  name: N,
  run: (data: JobData<N>, job: Job, signal?: AbortSignal) => Promise<unknown>,
  opts: ProcessorOptions,
): JobProcessor {
  return async (job, token, signal) => {
    try {
      if (job.name !== name) throw new JobPayloadError(`queue ${JOBS[name].queue} holds ${name} jobs, not "${job.name}"`);
      return await run(parseJobData(name, job.data), job, signal);
    } catch (e) {
      // The store is down (and this worker stopped waiting for it: it is closing). Back to the
      // queue without counting an attempt: the job is not at fault.
      if (isStoreUnavailable(e) && token) {
        await job.moveToDelayed((opts.now ?? Date.now)() + (opts.storeRetryMs ?? 1000), token);
        throw new DelayedError(e.message);
      }
      // A chained frame whose link's reference frame is not done: later, without an attempt.
      if (e instanceof ChainNotReadyError && token) {
        await job.moveToDelayed((opts.now ?? Date.now)() + (opts.chainRetryMs ?? 1000), token);
        throw new DelayedError(e.message);
      }
      throw toQueueError(e);
    }
  };
}

const attemptOf = (job: Job, signal?: AbortSignal): Attempt => ({
  jobId: job.id ?? job.name,
  // attemptsMade counts finished (failed) attempts, so the running one is the next.
  attempt: job.attemptsMade + 1,
  attempts: job.opts.attempts ?? 1,
  signal,
});

/** One processor per job name of the catalogue (a missing one is a type error). */
export function createProcessors(farm: FarmWorker, opts: ProcessorOptions = {}): Record<JobName, JobProcessor> {
  return {
    prepare: adapter('prepare', (data, job, signal) => farm.prepareShot(data, attemptOf(job, signal)), opts),
    frame: adapter(
      'frame',
      (data, job, signal) =>
        farm.renderFrame(data, {
          ...attemptOf(job, signal),
          reportProgress: (p) => job.updateProgress({ stage: p.stage, step: p.step, steps: p.steps }),
        }),
      opts,
    ),
    finalize: adapter('finalize', (data) => farm.finalizeShot(data), opts),
  };
}

/**
 * Follow-ups of failed and stalled jobs. `lookup` finds a job by id (the stalled event carries
 * only the id); payloads that fail the catalogue are ignored (nothing of ours to fix).
 */
export function createFollowUps(farm: FarmWorker, queues: Pick<FarmQueues, 'queues'>): QueueFollowUps {
  const parsed = <N extends JobName>(name: N, job: Job | undefined): JobData<N> | null => {
    if (!job || job.name !== name) return null;
    try {
      return parseJobData(name, job.data);
    } catch {
      return null;
    }
  };
  return {
    failed: {
      frame: async (job) => {
        const data = parsed('frame', job);
        if (data) await farm.frameJobFailed(data);
      },
      prepare: async (job, error) => {
        const data = parsed('prepare', job);
        if (data) await farm.prepareJobFailed(data, job.failedReason || error.message);
      },
    },
    stalled: {
      frame: async (jobId) => {
        const data = parsed('frame', await queues.queues.frames.getJob(jobId));
        if (data) await farm.frameJobStalled(data);
      },
    },
  };
}
