/**
 * The compact shot snapshot of `GET /v1/live` (`event: shots`, about every second while something
 * changes): enough to move progress bars and sampler steps without refetching shot views.
 */
import { z } from 'zod';
import { frameCountsSchema, shotStateSchema } from './states.ts';

// One letter per frame state (the store keeps them so too): defined with the records.
export { FRAME_LETTERS, FRAME_LETTER_STATES } from '@celfarm/jobs/records';

export const liveFrameSchema = z.object({
  frame: z.number().int(),
  stage: z.string().optional(),
  step: z.number().int().optional(),
  steps: z.number().int().optional(),
  worker: z.string().optional(),
});
export type LiveFrame = z.output<typeof liveFrameSchema>;

export const liveShotSchema = z.object({
  id: z.string(),
  state: shotStateSchema,
  updatedAt: z.string(),
  /** 0–1, as in the shot view. */
  progress: z.number(),
  etaSeconds: z.number().min(0).nullable(),
  frameCount: z.number().int(),
  counts: frameCountsSchema,
  /** Frame k's state is letter k − 1 (see {@link FRAME_LETTERS}). */
  frames: z.string(),
  /** Active frames with their stage and sampler step. */
  active: z.array(liveFrameSchema),
});
export type LiveShot = z.output<typeof liveShotSchema>;

export const liveSnapshotSchema = z.object({ at: z.string(), shots: z.array(liveShotSchema) });
export type LiveSnapshot = z.output<typeof liveSnapshotSchema>;
