/**
 * The states a client sees shots and frames in. They are the farm's own (libs/jobs, which also
 * holds the transitions between them), re-exported from its zod-only records module.
 */
import { z } from 'zod';
import { FRAME_STATES, SHOT_STATES, type FrameState } from '@celfarm/jobs/records';

export { FRAME_STATES, SHOT_STATES, TERMINAL_SHOT, type FrameState, type ShotState } from '@celfarm/jobs/records';

export const shotStateSchema = z.enum(SHOT_STATES);
export const frameStateSchema = z.enum(FRAME_STATES);

/** Frames per state; every state is present (0 when none). */
export const frameCountsSchema = z.object(
  Object.fromEntries(FRAME_STATES.map((s) => [s, z.number().int()])) as Record<FrameState, z.ZodNumber>,
);
export type FrameCounts = z.output<typeof frameCountsSchema>;
