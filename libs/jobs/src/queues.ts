/**
 * The farm's queues over BullMQ: one place that enqueues (validating payloads against the
 * catalogue), so api and worker agree on ids, priorities, attempts and flows.
 *
 * Shape of a shot: `prepare` (once) → on success, a flow whose parent is `finalize` (queue
 * shots) and whose children are the `frame` jobs. Children ignore their dependency on failure, so
 * the parent always runs and decides the shot's outcome from the frame records.
 */
import { FlowProducer, Queue, type BackoffStrategy, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { JOBS, QUEUES, jobIds, parseJobData, type JobData, type JobName, type QueueName } from './catalogue.ts';
import type { FrameJobView } from './fate.ts';
import { oldestWaitingTimestamp } from './queue-age.ts';

export interface QueueSettings {
  connection: ConnectionOptions;
  /** Redis key prefix of every queue. */
  prefix: string;
  /** Attempts per frame (transient failures), with exponential backoff from `backoffMs`. */
  frameAttempts: number;
  backoffMs?: number;
}

/**
 * Name of the backoff of finalize jobs: exponential from the job's `backoff.delay`, capped (see
 * {@link cappedBackoff}). Workers of the shots queue must register the strategy.
 */
export const CAPPED_BACKOFF = 'capped-exponential';

/**
 * Finalize is the only step that finishes a shot (its state, shot.json, the final event), and
 * it is idempotent: it is retried until it succeeds, not given up after a few attempts.
 */
export const FINALIZE_ATTEMPTS = 1_000_000;

/** Longest wait between two finalize attempts. */
export const FINALIZE_BACKOFF_MAX_MS = 60_000;

/**
 * BullMQ backoff strategy for {@link CAPPED_BACKOFF}: min(max, delay · 2^(attemptsMade − 1)),
 * with up to 20 % jitter off so jobs that failed together do not retry together.
 */
export function cappedBackoff(maxMs = FINALIZE_BACKOFF_MAX_MS, random: () => number = Math.random): BackoffStrategy {
  return (attemptsMade, type, _err, job) => {
    if (type !== CAPPED_BACKOFF) throw new Error(`unknown backoff strategy ${type}`);
    const delay = job?.opts.backoff && typeof job.opts.backoff === 'object' ? (job.opts.backoff.delay ?? 1000) : 1000;
    const step = Math.min(maxMs, delay * 2 ** Math.max(0, attemptsMade - 1));
    return Math.round(step * (1 - 0.2 * random()));
  };
}

/** BullMQ priority: 1 is highest. Studio priority 0–100 (higher first) maps onto 1–101. */
export const bullPriority = (priority: number): number => 101 - Math.max(0, Math.min(100, Math.round(priority)));

export class FarmQueues {
  readonly queues: Record<QueueName, Queue>;
  readonly flows: FlowProducer;

  constructor(readonly settings: QueueSettings) {
    const opts = { connection: settings.connection, prefix: settings.prefix };
    this.queues = {
      prepare: new Queue(QUEUES.prepare, opts),
      frames: new Queue(QUEUES.frames, opts),
      shots: new Queue(QUEUES.shots, opts),
    };
    this.flows = new FlowProducer(opts);
  }

  private jobOptions(name: JobName, jobId: string, priority: number): JobsOptions {
    const base: JobsOptions = {
      jobId,
      priority: bullPriority(priority),
      removeOnComplete: { age: 7 * 24 * 3600 },
      removeOnFail: { age: 7 * 24 * 3600 },
    };
    if (name === 'frame') {
      return {
        ...base,
        attempts: this.settings.frameAttempts,
        backoff: { type: 'exponential', delay: this.settings.backoffMs ?? 2000 },
        ignoreDependencyOnFailure: true,
      };
    }
    if (name === 'prepare') return { ...base, attempts: this.settings.frameAttempts, backoff: { type: 'exponential', delay: this.settings.backoffMs ?? 2000 } };
    return { ...base, attempts: FINALIZE_ATTEMPTS, backoff: { type: CAPPED_BACKOFF, delay: this.settings.backoffMs ?? 2000 } };
  }

  /** Enqueues the shot's prepare job (idempotent: a second call with the same shot is a no-op). */
  async enqueuePrepare(data: JobData<'prepare'>, priority: number): Promise<void> {
    const payload = parseJobData('prepare', data);
    await this.queues.prepare.add('prepare', payload, this.jobOptions('prepare', jobIds.prepare(payload.shotId), priority));
  }

  /**
   * Adds the frame flow of a shot: `finalize` parent with one `frame` child per frame. Ids are
   * deterministic (`round` > 0 for retries), so a repeated call adds nothing new.
   */
  async addFrameFlow(data: JobData<'finalize'>, frames: number[], priority: number, round = 0): Promise<void> {
    const payload = parseJobData('finalize', { shotId: data.shotId, project: data.project, round });
    const parentId = jobIds.finalize(payload.shotId, round);
    if (await this.queues.shots.getJob(parentId)) return;
    await this.flows.add({
      name: 'finalize',
      queueName: JOBS.finalize.queue,
      data: payload,
      opts: { ...this.jobOptions('finalize', parentId, priority) },
      children: frames.map((frame) => ({
        name: 'frame',
        queueName: JOBS.frame.queue,
        data: parseJobData('frame', { ...payload, frame }),
        opts: this.jobOptions('frame', jobIds.frame(payload.shotId, frame, round), priority),
      })),
    });
  }

  /** What the frames queue says of a frame's job in `round` (state, why it failed). */
  async frameJob(shotId: string, frame: number, round = 0): Promise<FrameJobView> {
    const job = await this.queues.frames.getJob(jobIds.frame(shotId, frame, round));
    if (!job) return { state: 'missing' };
    const state = await job.getState();
    const known: readonly FrameJobView['state'][] = ['waiting', 'prioritized', 'delayed', 'active', 'waiting-children', 'completed', 'failed'];
    return {
      state: known.includes(state as FrameJobView['state']) ? (state as FrameJobView['state']) : 'unknown',
      failedReason: job.failedReason || undefined,
      attemptsMade: job.attemptsMade,
    };
  }

  /**
   * Whether the finalize job of the shot's `round` is still to finish (waiting for its frames,
   * running, or waiting to retry): while it is, the round's outcome, shot.json and final event
   * are not all written, and no new round may start. False when it completed, failed for good, or
   * is gone (removed, or from before rounds).
   */
  async finalizing(shotId: string, round = 0): Promise<boolean> {
    const job = await this.queues.shots.getJob(jobIds.finalize(shotId, round));
    if (!job) return false;
    const state = await job.getState();
    return state !== 'completed' && state !== 'failed' && state !== 'unknown';
  }

  /**
   * Removes the shot's jobs that have not started (prepare, waiting/delayed frames). Active
   * frames see the cancelled shot state at their next step and stop there.
   */
  async removePending(shotId: string, frames: number[], round = 0): Promise<number> {
    let removed = 0;
    const tryRemove = async (q: Queue, id: string) => {
      const job = await q.getJob(id);
      if (!job) return;
      const state = await job.getState();
      if (state === 'waiting' || state === 'delayed' || state === 'prioritized' || state === 'waiting-children') {
        try {
          await job.remove();
          removed++;
        } catch {
          // became active meanwhile: the worker will see the cancelled state
        }
      }
    };
    await tryRemove(this.queues.prepare, jobIds.prepare(shotId));
    for (const f of frames) await tryRemove(this.queues.frames, jobIds.frame(shotId, f, round));
    return removed;
  }

  /** Job counts per queue and state, for queue-depth metrics. */
  async depths(): Promise<Record<QueueName, Record<string, number>>> {
    const entries = await Promise.all(
      (Object.keys(this.queues) as QueueName[]).map(
        async (name) => [name, await this.queues[name].getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed', 'waiting-children')] as const,
      ),
    );
    return Object.fromEntries(entries) as Record<QueueName, Record<string, number>>;
  }

  /**
   * Per queue, the enqueue time (ms) of the job waiting longest for a worker (waiting or
   * prioritized; see queue-age.ts), or null when none waits: for the queue-age metric.
   */
  async oldestWaiting(): Promise<Record<QueueName, number | null>> {
    const entries = await Promise.all((Object.keys(this.queues) as QueueName[]).map(async (name) => [name, await oldestWaitingTimestamp(this.queues[name])] as const));
    return Object.fromEntries(entries) as Record<QueueName, number | null>;
  }

  async close(): Promise<void> {
    await Promise.all([...Object.values(this.queues).map((q) => q.close()), this.flows.close()]);
  }
}
