/**
 * The one typed job catalogue shared by api and worker: job name → queue and payload schema,
 * validated on enqueue and on dequeue, plus deterministic job ids. BullMQ refuses `:` in custom
 * ids, so ids join with `-`.
 */
import { z } from 'zod';
import { projectIdSchema } from '@celfarm/tenancy/project-id';

export const QUEUES = {
  /** Once per shot: the ReferenceContext (reference side), then the frame flow. */
  prepare: 'prepare',
  /** One job per frame, children of the shot's finalize job. */
  frames: 'frames',
  /** The shot's parent job: runs when every frame has finished; decides the shot's outcome. */
  shots: 'shots',
} as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

const shotRef = { shotId: z.string().regex(/^[a-z0-9]{6,40}$/), project: projectIdSchema };
/** The retry round a flow job belongs to (0, the first run, when absent: jobs queued before rounds were carried). */
const round = z.number().int().min(0).optional();

export const JOBS = {
  prepare: { queue: QUEUES.prepare, schema: z.strictObject(shotRef) },
  frame: { queue: QUEUES.frames, schema: z.strictObject({ ...shotRef, frame: z.number().int().min(1), round }) },
  finalize: { queue: QUEUES.shots, schema: z.strictObject({ ...shotRef, round }) },
} as const;

export type JobName = keyof typeof JOBS;
export type JobData<N extends JobName> = z.infer<(typeof JOBS)[N]['schema']>;

export class JobPayloadError extends Error {
  override readonly name = 'JobPayloadError';
}

/** Validates a payload for `name`; throws JobPayloadError naming the fields (enqueue and dequeue). */
export function parseJobData<N extends JobName>(name: N, data: unknown): JobData<N> {
  const spec = JOBS[name];
  if (!spec) throw new JobPayloadError(`unknown job name ${String(name)}`);
  const r = spec.schema.safeParse(data);
  if (!r.success) {
    throw new JobPayloadError(`job ${name}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return r.data as JobData<N>;
}

const roundSuffix = (round: number) => (round > 0 ? `-r${round}` : '');

/** Deterministic job ids; frames and finalize of retry round n > 0 end in `-r<n>`. */
export const jobIds = {
  prepare: (shotId: string) => `${shotId}-prepare`,
  frame: (shotId: string, frame: number, round = 0) => `${shotId}-${frame}${roundSuffix(round)}`,
  finalize: (shotId: string, round = 0) => `${shotId}-finalize${roundSuffix(round)}`,
};

/** A new shot id: time-ordered base36 + random, lowercase letters and digits only. */
export function newShotId(now = Date.now(), random: () => number = Math.random): string {
  const rand = Array.from({ length: 8 }, () => Math.floor(random() * 36).toString(36)).join('');
  return `s${now.toString(36)}${rand}`;
}

/** The seed of frame `frame` (1-based) of a shot with base seed `base`: deterministic per frame. */
export const frameSeed = (base: number, frame: number): number => (base + frame - 1) % 429_496_730;
