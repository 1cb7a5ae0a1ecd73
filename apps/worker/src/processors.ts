/**
 * The BullMQ processors: thin adapters that validate the payload against the job catalogue, call
 * one {@link FarmWorker} method and hand its errors to the queue — bad input as
 * UnrecoverableError (no retries), everything else unchanged (retried with backoff). Nothing is
 * caught and logged here.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import { JOBS, JobPayloadError, parseJobData, type JobData, type JobName } from '@celfarm/jobs';
import { errorInfo, isBadInput } from './errors.ts';
import type { Attempt, FarmWorker } from './farm-worker.ts';

export type JobProcessor = (job: Job, token?: string, signal?: AbortSignal) => Promise<unknown>;

/** The error the queue should see: bad input becomes an UnrecoverableError carrying its code. */
export function toQueueError(e: unknown): unknown {
  if (!isBadInput(e)) return e;
  const { code, field, message } = errorInfo(e);
  const err = new UnrecoverableError(`${code}${field ? ` (${field})` : ''}: ${message}`);
  err.cause = e;
  return err;
}

function adapter<N extends JobName>(name: N, run: (data: JobData<N>, job: Job, signal?: AbortSignal) => Promise<unknown>): JobProcessor {
  return async (job, _token, signal) => {
    try {
      if (job.name !== name) throw new JobPayloadError(`queue ${JOBS[name].queue} holds ${name} jobs, not "${job.name}"`);
      return await run(parseJobData(name, job.data), job, signal);
    } catch (e) {
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
export function createProcessors(farm: FarmWorker): Record<JobName, JobProcessor> {
  return {
    prepare: adapter('prepare', (data, job, signal) => farm.prepareShot(data, attemptOf(job, signal))),
    frame: adapter('frame', (data, job, signal) =>
      farm.renderFrame(data, {
        ...attemptOf(job, signal),
        reportProgress: (p) => job.updateProgress({ stage: p.stage, step: p.step, steps: p.steps }),
      }),
    ),
    finalize: adapter('finalize', (data) => farm.finalizeShot(data)),
  };
}
