/**
 * The farm's queues over BullMQ: one place that enqueues (validating payloads against the
 * catalogue), so api and worker agree on ids, priorities, attempts and flows.
 *
 * Shape of a shot: `prepare` (once) → on success, a flow whose parent is `finalize` (queue
 * shots) and whose children are the `frame` jobs. Children ignore their dependency on failure, so
 * the parent always runs and decides the shot's outcome from the frame records.
 */
import { FlowProducer, Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { JOBS, QUEUES, jobIds, parseJobData, type JobData, type JobName, type QueueName } from './catalogue.ts';

export interface QueueSettings {
  connection: ConnectionOptions;
  /** Redis key prefix of every queue. */
  prefix: string;
  /** Attempts per frame (transient failures), with exponential backoff from `backoffMs`. */
  frameAttempts: number;
  backoffMs?: number;
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
    return base;
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
    const payload = parseJobData('finalize', data);
    const suffix = round > 0 ? `-r${round}` : '';
    const parentId = `${jobIds.finalize(payload.shotId)}${suffix}`;
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
        opts: this.jobOptions('frame', `${jobIds.frame(payload.shotId, frame)}${suffix}`, priority),
      })),
    });
  }

  /**
   * Removes the shot's jobs that have not started (prepare, waiting/delayed frames). Active
   * frames see the cancelled shot state at their next step and stop there.
   */
  async removePending(shotId: string, frames: number[], round = 0): Promise<number> {
    let removed = 0;
    const suffix = round > 0 ? `-r${round}` : '';
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
    for (const f of frames) await tryRemove(this.queues.frames, `${jobIds.frame(shotId, f)}${suffix}`);
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

  async close(): Promise<void> {
    await Promise.all([...Object.values(this.queues).map((q) => q.close()), this.flows.close()]);
  }
}
