/**
 * Shot and frame records: what the farm knows about a shot, stored in Redis (AOF) and mirrored
 * into S3 as shot.json when the shot finishes. The state machines of shots and frames live here,
 * in one place; ShotStore enforces them on every write.
 */
import { z } from 'zod';
import { resolvedSettingsSchema, settingsWarningSchema } from '@celfarm/pipeline/settings-schema';
import { externalIdsSchema } from './identity.ts';

export const SHOT_STATES = ['queued', 'preparing', 'running', 'completed', 'failed', 'cancelled'] as const;
export type ShotState = (typeof SHOT_STATES)[number];
export const FRAME_STATES = ['waiting', 'active', 'completed', 'failed', 'cancelled'] as const;
export type FrameState = (typeof FRAME_STATES)[number];

/**
 * One letter per frame state: the store keeps a shot's frame states as one string of these (frame
 * k at index k−1), and the live snapshot sends it, so 2000 frames cost 2000 bytes, not 2000 records.
 */
export const FRAME_LETTERS: Readonly<Record<FrameState, string>> = {
  waiting: 'w',
  active: 'a',
  completed: 'c',
  failed: 'f',
  cancelled: 'x',
};

/** The reverse of {@link FRAME_LETTERS}. */
export const FRAME_LETTER_STATES: Readonly<Record<string, FrameState>> = Object.fromEntries(
  Object.entries(FRAME_LETTERS).map(([state, letter]) => [letter, state as FrameState]),
);

export const TERMINAL_SHOT: readonly ShotState[] = ['completed', 'failed', 'cancelled'];
const SHOT_TRANSITIONS: Record<ShotState, readonly ShotState[]> = {
  queued: ['preparing', 'running', 'failed', 'cancelled'],
  preparing: ['running', 'failed', 'cancelled', 'queued'],
  running: ['completed', 'failed', 'cancelled'],
  // A retry of failed frames reopens a finished shot.
  completed: ['running'],
  failed: ['running'],
  cancelled: [],
};
export const canShotTransition = (from: ShotState, to: ShotState): boolean => from === to || SHOT_TRANSITIONS[from].includes(to);

/**
 * A frame renders in rounds: waiting → active → completed | failed. An attempt that fails while
 * attempts remain, or whose worker was lost, hands the frame back to waiting; a failed frame
 * goes back to waiting only when its shot's failed frames are retried as a new round; a frame
 * whose job will never run again fails from waiting. A completed frame goes back to waiting only
 * when a user renders it again with another seed (review.ts; a new round, its take kept), and
 * such a frame, cancelled before its new take is rendered, goes back to the take it had
 * (`canFrameBecome`, `cancelledPatch`). No worker moves a frame out of completed or
 * cancelled, so a late worker (one that lost its lock, or a job delivered twice) cannot undo either.
 */
const FRAME_TRANSITIONS: Record<FrameState, readonly FrameState[]> = {
  waiting: ['active', 'failed', 'cancelled'],
  active: ['waiting', 'completed', 'failed', 'cancelled'],
  completed: ['waiting'],
  failed: ['waiting'],
  cancelled: [],
};
/** Same-state writes (a patch of other fields, a rerun rewriting its own result) are always allowed. */
export const canFrameTransition = (from: FrameState, to: FrameState): boolean => from === to || FRAME_TRANSITIONS[from].includes(to);

/**
 * Whether a frame record may become `next`: a transition above, or a frame handed back by a
 * re-render returning, unrendered, to the earlier take it had (waiting/active → completed with
 * that take's round; `cancelledPatch`). A late worker's completion keeps the take, so it is not one.
 */
export const canFrameBecome = (cur: Pick<FrameRecord, 'state' | 'take'>, next: Pick<FrameRecord, 'state' | 'take'>): boolean =>
  canFrameTransition(cur.state, next.state) ||
  ((cur.state === 'waiting' || cur.state === 'active') && next.state === 'completed' && next.take !== undefined && cur.take !== undefined && next.take < cur.take);

export const errorInfoSchema = z.object({
  code: z.string(),
  field: z.string().optional(),
  message: z.string(),
  /** True when no retry can fix it (bad input, bad pack); absent for failures a retry may fix. */
  permanent: z.boolean().optional(),
});
export type ErrorInfo = z.infer<typeof errorInfoSchema>;

/** Thresholds a shot's frames are judged against (libs/qa: DEFAULT_THRESHOLDS); each one optional. */
export const qaThresholdsSchema = z.strictObject({
  /** ΔE00 (0–100): flagged above. */
  palette: z.number().min(0).max(100).optional(),
  /** ΔE00 (0–100): flagged above. */
  flickerMean: z.number().min(0).max(100).optional(),
  /** Share (0–1): flagged above. */
  flickerShare: z.number().min(0).max(1).optional(),
  /** Share (0–1): flagged below. */
  lineFidelity: z.number().min(0).max(1).optional(),
});
export type QaThresholdsSetting = z.infer<typeof qaThresholdsSchema>;

/**
 * What a shot does to keep its frames alike (Shot QA, "Consistency"); absent on shots from before:
 * every option off.
 */
export const PALETTE_LOCKS = ['off', 'reference', 'approved'] as const;
export const REFERENCE_CHAINS = ['off', 'approved', 'previous'] as const;
/** Frames per chain link of `referenceChain: previous` when the request gives none. */
export const DEFAULT_CHAIN_LINK = 8;
export const consistencySchema = z.object({
  /** Every frame starts from the same noise: the shot's seed, not seed + k − 1. */
  sharedNoise: z.boolean(),
  /**
   * Pull each output's flat colours onto a palette, keeping lines and shading: `reference` (the
   * reference's colours), `approved` (the nearest approved frame's, else the reference's), `off`.
   */
  paletteLock: z.enum(PALETTE_LOCKS),
  /**
   * `approved`: a frame renders from the nearest approved frame before it — that frame's output
   * as the reference (encoded once per approved frame) — instead of the shot's reference;
   * `previous`: the shot renders in links of `chainLink` frames, each link from the output of the
   * last frame of the link before (the first from the shot's reference), a link waiting for that
   * frame; `off`.
   */
  referenceChain: z.enum(REFERENCE_CHAINS),
  /** Frames per link of `referenceChain: previous` (1: every frame from the one before). */
  chainLink: z.number().int().min(1).max(1000).optional(),
});
export type Consistency = z.infer<typeof consistencySchema>;
export const NO_CONSISTENCY: Consistency = Object.freeze({ sharedNoise: false, paletteLock: 'off', referenceChain: 'off' });
/** Whether a shot asked for any consistency option. */
export const anyConsistency = (c: Consistency): boolean => c.sharedNoise || c.paletteLock !== 'off' || c.referenceChain !== 'off';

export const shotRecordSchema = z.object({
  id: z.string(),
  project: z.string(),
  /** What the studio calls the shot (given at submit, else derived: identity.ts); absent on shots from before names. */
  name: z.string().optional(),
  /** The studio's own ids of the shot (show, sequence, shot code), as submitted. */
  externalIds: externalIdsSchema.optional(),
  state: z.enum(SHOT_STATES),
  createdAt: z.string(),
  updatedAt: z.string(),
  /**
   * The settings the shot renders with: resolved once, at submit, against the pack the API serves
   * (the output size of a shot awaiting uploads is set at start); every later stage takes them as given.
   */
  settings: resolvedSettingsSchema,
  /** What resolving the settings adjusted or found unused (size fitted, knob ignored); shown to the user. */
  warnings: z.array(settingsWarningSchema).default([]),
  /** Base seed (resolved at submit when the request said −1); frame k uses base + k − 1. */
  seed: z.number().int(),
  priority: z.number().int(),
  pack: z.object({ id: z.string(), version: z.string() }),
  frameCount: z.number().int(),
  inputs: z.object({
    frames: z.array(z.string()),
    reference: z.string(),
    background: z.string().optional(),
  }),
  /** Share of frames that may fail before the shot fails. */
  failedFrameShare: z.number(),
  idempotencyKey: z.string().optional(),
  /** Content hash of the ReferenceContext once prepared. */
  contextKey: z.string().optional(),
  error: errorInfoSchema.optional(),
  /** Input uploads still expected (presigned PUT flow) before the shot can start. */
  awaitingUploads: z.boolean().default(false),
  /** Retry round: 0 for the first run, +1 per "retry failed frames" (job ids carry it). */
  round: z.number().int().default(0),
  /** sha256 of the reference / background bytes (lineage). */
  referenceSha256: z.string().optional(),
  backgroundSha256: z.string().optional(),
  /**
   * Shot QA thresholds its frames are judged against, resolved at submit: the request's, else the
   * project's, else QA_THRESHOLDS, else libs/qa's defaults (absent on shots from before: defaults).
   */
  qaThresholds: qaThresholdsSchema.optional(),
  /** Consistency options, as submitted (absent: all off). */
  consistency: consistencySchema.optional(),
});
export type ShotRecord = z.infer<typeof shotRecordSchema>;

/** The QA scores of a frame (libs/qa: definitions, ranges, default thresholds). */
export const QA_SCORES = ['palette', 'flickerMean', 'flickerShare', 'lineFidelity'] as const;
export type QaScoreName = (typeof QA_SCORES)[number];

/** Every score is ≥ 0 (the `.min(0)` also keeps nestjs-zod 5.5 from documenting a bare nullable as an array, its issue #473). */
const qaValue = z.number().min(0).nullable().optional();

/**
 * Shot QA of a completed frame (libs/qa). A score is absent until it has been computed and null
 * when it cannot be for this frame (flicker of the first frame, or over too little unchanged line
 * art; line fidelity of a sketch without lines). Palette and line fidelity come with the frame's
 * completion; flicker once the previous frame has completed too, whichever finished last.
 */
export const frameQaSchema = z.object({
  scores: z.object({
    /** ΔE00 from the output's dominant colours (inside the character) to the reference's palette; worse above. */
    palette: qaValue,
    /** Mean ΔE00 against the previous frame where the line art did not change; worse above. */
    flickerMean: qaValue,
    /** Share of that unchanged area changing by more than the JND (ΔE00 2.3); worse above. */
    flickerShare: qaValue,
    /** Share of the sketch's line pixels still dark in the output; worse below. */
    lineFidelity: qaValue,
  }),
  /** Share of the frame over which flicker was measured (null without a value). */
  flickerMeasuredShare: qaValue,
  /** The threshold each score was judged against. */
  thresholds: z.object({
    palette: z.number().optional(),
    flickerMean: z.number().optional(),
    flickerShare: z.number().optional(),
    lineFidelity: z.number().optional(),
  }),
  /** The scores past their thresholds (in {@link QA_SCORES} order); a frame with any is flagged for review. */
  flagged: z.array(z.enum(QA_SCORES)),
});
export type FrameQa = z.infer<typeof frameQaSchema>;


/** A user's decision on a frame shot QA flagged: approved as it is (a re-render clears it). */
export const frameReviewSchema = z.object({
  state: z.enum(['approved']),
  at: z.string(),
  /** Who approved it: the API key's id, or the session's key id. */
  by: z.string().optional(),
});
export type FrameReview = z.infer<typeof frameReviewSchema>;

/**
 * A take the frame had before it was rendered again with another seed (lineage): its seed, its
 * output and preview as they were (copied aside, so the new take does not overwrite them), its
 * scores and review.
 */
export const frameTakeSchema = z.object({
  /** The retry round that rendered it. */
  round: z.number().int(),
  seed: z.number().int(),
  /** Object key of the take's output (and preview) as copied aside. */
  output: z.string(),
  preview: z.string().optional(),
  qa: frameQaSchema.optional(),
  review: frameReviewSchema.optional(),
  seconds: z.number().optional(),
  /** When it was replaced by a re-render. */
  replacedAt: z.string(),
});
export type FrameTake = z.infer<typeof frameTakeSchema>;

export const frameRecordSchema = z.object({
  frame: z.number().int(),
  state: z.enum(FRAME_STATES),
  stage: z.string().optional(),
  step: z.number().int().optional(),
  steps: z.number().int().optional(),
  attempts: z.number().int().default(0),
  worker: z.string().optional(),
  seed: z.number().int(),
  /**
   * The frame's original file name (the multipart file name, the last segment of its object key,
   * or `frames.fileNames`); its output is named after it. Absent on frames from before names.
   */
  fileName: z.string().optional(),
  output: z.string().optional(),
  /** Wall seconds of the last successful run (for ETAs) and per stage. */
  seconds: z.number().optional(),
  error: errorInfoSchema.optional(),
  updatedAt: z.string().optional(),
  /** sha256 of the sketch input bytes (lineage). */
  sketchSha256: z.string().optional(),
  /** Shot QA scores (completed frames rendered since QA). */
  qa: frameQaSchema.optional(),
  /** The user's review of this take (approve), cleared when the frame is rendered again. */
  review: frameReviewSchema.optional(),
  /** Earlier takes, oldest first, when the frame was rendered again with another seed. */
  takes: z.array(frameTakeSchema).optional(),
  /** The retry round of the current take, when it is a re-render (absent: the shot's first take). */
  take: z.number().int().optional(),
  /**
   * Reference chaining: the frame (and its take) whose output this take rendered from instead of
   * the shot's reference; absent when it rendered from the shot's reference.
   */
  referenceFrom: z.object({ frame: z.number().int(), take: z.number().int() }).optional(),
});
export type FrameRecord = z.infer<typeof frameRecordSchema>;

/** Worker registry entry (heartbeat). */
export const workerInfoSchema = z.object({
  id: z.string(),
  host: z.string(),
  pid: z.number().int(),
  provider: z.string(),
  pack: z.string(),
  startedAt: z.string(),
  lastSeen: z.string(),
  currentJob: z.string().nullable(),
  framesDone: z.number().int(),
});
export type WorkerInfo = z.infer<typeof workerInfoSchema>;
