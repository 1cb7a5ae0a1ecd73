/** /v1/workers and /v1/queues on the wire: what the farm is doing, farm-wide. */
import { z } from 'zod';
import { workerInfoSchema } from '@celfarm/jobs/records';

/** A live worker: its registry entry (heartbeat). */
export const workerViewSchema = workerInfoSchema.extend({
  /** Job id being processed, or null when idle. */
  currentJob: z.string().min(1).nullable(),
});
export type WorkerView = z.output<typeof workerViewSchema>;

export const workerListSchema = z.object({ workers: z.array(workerViewSchema) });
export type WorkerList = z.output<typeof workerListSchema>;

export const queueDepthsSchema = z.object({
  /** Queue (prepare, frames, shots) → state (waiting, prioritized, active, delayed, completed, failed, waiting-children) → jobs. */
  queues: z.record(z.string(), z.record(z.string(), z.number().int())),
});
export type QueueDepths = z.output<typeof queueDepthsSchema>;
