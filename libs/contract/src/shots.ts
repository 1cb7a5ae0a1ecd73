/**
 * /v1/shots on the wire: the submit (JSON or multipart), the list query, the shot view and the
 * pages of its frames. Field names in errors follow these schemas: `frames.keys[0]`,
 * `settings.steps`, and for multipart uploads `reference`, `background`, `frames[0]` (0-based).
 */
import { z } from 'zod';
import { externalIdsSchema, fileNameSchema, searchTextSchema, shotNameSchema } from '@celfarm/jobs/identity';
import {
  consistencySchema,
  errorInfoSchema,
  frameQaSchema,
  frameRecordSchema,
  frameReviewSchema,
  frameTakeSchema,
  PALETTE_LOCKS,
  qaThresholdsSchema,
  REFERENCE_CHAINS,
  shotRecordSchema,
} from '@celfarm/jobs/records';

export { consistencySchema, frameReviewSchema, PALETTE_LOCKS, qaThresholdsSchema, REFERENCE_CHAINS, type Consistency, type FrameReview, type QaThresholdsSetting } from '@celfarm/jobs/records';
import { MAX_SEED, settingsWarningSchema } from '@celfarm/pipeline/settings-schema';
import { projectIdSchema } from '@celfarm/tenancy/project-id';
import { liveFrameSchema } from './live.ts';
import { FRAME_STATES, frameCountsSchema, frameStateSchema, SHOT_STATES } from './states.ts';

export { projectIdSchema } from '@celfarm/tenancy/project-id';
/** How a frame's file is named from an object key, or from its number when it has no name. */
export { lastSegment, numberedFileName } from '@celfarm/jobs/identity';
/** A shot's settings as resolved at submit (what it renders with), and the warnings resolving them gave. */
export { resolvedSettingsSchema, settingsWarningSchema, type ResolvedSettings, type SettingsWarning } from '@celfarm/pipeline/settings-schema';

/** Only the shape is checked on the wire; the API validates every knob against the pack it serves. */
const settingsInput = z.record(z.string(), z.unknown()).meta({ description: 'Pipeline knobs (shared/model-contract.md §5); unknown keys are refused.' });

const requestFields = {
  /** Defaults to the API key's project; any other is refused (403). */
  project: projectIdSchema.optional(),
  settings: settingsInput.default({}),
  /** 0–100, higher first. */
  priority: z.number().int().min(0).max(100).default(50),
  /** Share of frames that may fail before the shot fails (default: FAILED_FRAME_SHARE). */
  failedFrameShare: z.number().min(0).max(1).optional(),
  /**
   * What the studio calls the shot (1–200 characters). Default: the shot code of `externalIds`,
   * else the frames' common file name (`sh010_0001.png` → `sh010`), else their folder, else the id.
   */
  name: shotNameSchema.optional(),
  /** The studio's own ids of the shot: show, sequence and shot code (each 1–64 of `A–Z a–z 0–9 . _ -`). */
  externalIds: externalIdsSchema.optional(),
  /**
   * Shot QA thresholds for this shot's frames, each optional; the others come from the project's
   * (`PUT /v1/qa/thresholds`), else QA_THRESHOLDS, else the defaults (README, "Shot QA").
   */
  qa: z.strictObject({ thresholds: qaThresholdsSchema }).optional(),
  /**
   * Keeping the shot's frames alike (all off by default): `sharedNoise` — every frame starts from
   * the shot's seed instead of seed + k − 1; `paletteLock` — each output's flat colours pulled onto
   * the reference's palette (`reference`) or the nearest approved frame's (`approved`), lines and
   * shading kept; `referenceChain: approved` — a frame renders from the nearest approved frame
   * before it (its output as the reference) instead of the shot's reference; `referenceChain:
   * previous` — links of `chainLink` frames (default 8), each from the last output of the link before.
   */
  consistency: z
    .strictObject({
      sharedNoise: z.boolean().optional(),
      paletteLock: z.enum(PALETTE_LOCKS).optional(),
      referenceChain: z.enum(REFERENCE_CHAINS).optional(),
      chainLink: z.number().int().min(1).max(1000).optional(),
    })
    .superRefine((c, ctx) => {
      if (c.chainLink !== undefined && c.referenceChain !== 'previous') ctx.addIssue({ code: 'custom', path: ['chainLink'], message: 'only with referenceChain: previous' });
    })
    .optional(),
};

/** The `request` field of a multipart submit. */
export const formRequestSchema = z.strictObject(requestFields);
export type FormRequest = z.output<typeof formRequestSchema>;

const objectKey = z.string().min(1).max(1024);
const exactlyOne = (names: string[]) => (v: Record<string, unknown>, ctx: z.RefinementCtx) => {
  const given = names.filter((n) => v[n] !== undefined);
  if (given.length !== 1) ctx.addIssue({ code: 'custom', message: `give exactly one of ${names.join(', ')}` });
};
const requiredMessage = { error: (iss: { input?: unknown }) => (iss.input === undefined ? 'required' : undefined) };

/** An image input: an existing object (`key`, under the project's prefix) or a presigned upload. */
const imageInput = z
  .strictObject({ key: objectKey.optional(), upload: z.literal(true).optional() }, requiredMessage)
  .superRefine(exactlyOne(['key', 'upload']));

/**
 * Frames in order: existing keys, every image under a prefix (sorted), or N presigned uploads.
 * Each frame keeps a file name — the last segment of its key, or `fileNames[i]` — and its output
 * is named after it; names must differ (in more than case and extension).
 */
const framesInput = z
  .strictObject(
    {
      keys: z.array(objectKey).min(1).optional(),
      prefix: objectKey.optional(),
      upload: z.number().int().min(1).optional(),
      /** With `keys` or `upload`: the frames' file names, one per frame (default: the keys' last segments; `00001.png`, … for uploads). */
      fileNames: z.array(fileNameSchema).min(1).optional(),
    },
    requiredMessage,
  )
  .superRefine(exactlyOne(['keys', 'prefix', 'upload']))
  .superRefine((v, ctx) => {
    if (v.fileNames === undefined) return;
    const count = v.keys?.length ?? v.upload;
    if (count === undefined) ctx.addIssue({ code: 'custom', path: ['fileNames'], message: 'only with keys or upload (a prefix names its frames by their keys)' });
    else if (v.fileNames.length !== count) ctx.addIssue({ code: 'custom', path: ['fileNames'], message: `${v.fileNames.length} names for ${count} frames` });
  });

/** The JSON submit: existing objects or presigned uploads. */
export const jsonSubmitSchema = z.strictObject({
  ...requestFields,
  reference: imageInput,
  background: imageInput.optional(),
  frames: framesInput,
});
export type JsonSubmit = z.output<typeof jsonSubmitSchema>;
export type JsonSubmitInput = z.input<typeof jsonSubmitSchema>;

/** The `Idempotency-Key` header of a submit. */
export const idempotencyKeySchema = z.string().regex(/^[\x21-\x7e]{1,200}$/, '1–200 visible ASCII characters').optional();

/** The query of `GET /v1/shots`. */
export const listQuerySchema = z.strictObject({
  state: z.enum(SHOT_STATES).optional(),
  project: projectIdSchema.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  /** `next` of the previous page. */
  before: z.string().regex(/^\d+(\.[a-z0-9]+)?$/, 'the `next` value of a previous page').optional(),
  /**
   * Only shots whose name, studio ids or id contain this text (case-insensitive). A search looks
   * at up to 5,000 shots per call, newest first; a page with fewer than `limit` shots and a
   * `next` means it stopped there: pass `next` as `before` to search on.
   */
  q: searchTextSchema.optional(),
});
export type ListQuery = z.output<typeof listQuerySchema>;

export const frameViewSchema = z.object({
  frame: z.number().int(),
  /**
   * The frame's original file name (as uploaded, the last segment of its key, or `frames.fileNames`);
   * its output is `<name without extension>.png`.
   */
  fileName: z.string(),
  state: frameStateSchema,
  stage: z.string().optional(),
  step: z.number().int().optional(),
  steps: z.number().int().optional(),
  attempts: z.number().int(),
  worker: z.string().optional(),
  seed: z.number().int(),
  error: errorInfoSchema.optional(),
  /** Input sketch key. */
  input: z.string(),
  /**
   * Where to GET the input sketch (absent while it awaits its upload): a presigned store URL, or a
   * path on this API (send your API key) — S3_PRESIGN decides.
   */
  inputUrl: z.string().optional(),
  /** Output key (set when completed). */
  output: z.string().optional(),
  /** Where to GET the output, when completed (as `inputUrl`). */
  outputUrl: z.string().optional(),
  /** Where to GET the output's WebP preview (longer side ≤ 256 px), when completed (as `inputUrl`). */
  previewUrl: z.string().optional(),
  /**
   * Shot QA of a completed frame: its scores (palette fidelity, flicker against the previous frame,
   * line fidelity), the thresholds they were judged against, and `flagged`, the scores past them
   * (a frame with any needs review). Flicker appears once the previous frame has completed too.
   */
  qa: frameQaSchema.optional(),
  /** Flagged by shot QA and not approved: the frame waits for a person. */
  needsReview: z.boolean(),
  /** Reference chaining: the frame (and take) whose output this take rendered from; absent: the shot's reference. */
  referenceFrom: frameRecordSchema.shape.referenceFrom,
  /** The user's approval of this take (`POST …/frames/{frame}/approve`); a re-render clears it. */
  review: frameReviewSchema.optional(),
  /**
   * Earlier takes, oldest first, when the frame was rendered again with another seed
   * (`POST …/frames/{frame}/rerender`): seed, scores, review, and where to GET their images.
   */
  takes: z
    .array(
      frameTakeSchema
        .pick({ round: true, seed: true, output: true, qa: true, review: true, replacedAt: true })
        .extend({ outputUrl: z.string().optional(), previewUrl: z.string().optional() }),
    )
    .optional(),
});
export type FrameView = z.output<typeof frameViewSchema>;

export const shotSummarySchema = shotRecordSchema
  .pick({ id: true, project: true, state: true, createdAt: true, updatedAt: true, settings: true, seed: true, priority: true, pack: true, frameCount: true })
  .extend({
    /** What the studio calls the shot: as submitted, else derived at submit (see the submit's `name`). */
    name: z.string(),
    /** The studio's ids of the shot, when submitted with any. */
    externalIds: externalIdsSchema.optional(),
    counts: frameCountsSchema,
    /** Frames flagged for review by shot QA (a score past its threshold); `GET /v1/shots/{id}/frames?flagged=true` lists them. */
    flagged: z.number().int(),
    /** Flagged frames not approved yet; `GET /v1/shots/{id}/frames?review=needed` lists them. */
    needsReview: z.number().int(),
    /** The shot QA thresholds its frames are judged against, as resolved at submit (absent: the defaults). */
    qaThresholds: qaThresholdsSchema.optional(),
    /** The shot's consistency options (all off when absent). */
    consistency: consistencySchema.optional(),
    /** Failed frames a retry would render again: those whose error is not `permanent`. */
    retryableFrames: z.number().int(),
    /** 0–1: completed frames plus the sampled share of active ones, over the frame count. */
    progress: z.number(),
    /**
     * Seconds left at the live worker count; null until a frame has completed. (The `.min(0)`
     * also keeps nestjs-zod 5.5 from documenting a bare nullable as an array, its issue #473.)
     */
    etaSeconds: z.number().min(0).nullable(),
    /** Share of frames that may fail before the shot fails. */
    failedFrameShare: z.number(),
    /** Input uploads still expected (presigned PUT flow) before the shot can start. */
    awaitingUploads: z.boolean(),
    /** Retry round: 0 for the first run, +1 per "retry failed frames". */
    round: z.number().int(),
    inputs: z.object({ reference: z.string(), background: z.string().optional() }),
    error: errorInfoSchema.optional(),
    /**
     * What resolving the settings at submit adjusted or found unused — a size fitted to the pack,
     * a knob this mode does not read — as returned by the submit; empty when nothing was.
     */
    warnings: z.array(settingsWarningSchema),
  });
export type ShotSummary = z.output<typeof shotSummarySchema>;

/** The shot view lists at most this many of its active frames (the lowest frame numbers). */
export const SHOT_VIEW_ACTIVE_MAX = 100;

/**
 * One shot: its summary and the frames being rendered now. The frames themselves, with the URLs
 * of their images, are paged at `GET /v1/shots/{id}/frames`; a poll of this view costs the same
 * for 2 frames or 2000.
 */
export const shotViewSchema = shotSummarySchema.extend({
  /**
   * Active frames with their stage and sampler step, as in the live snapshot; at most
   * {@link SHOT_VIEW_ACTIVE_MAX} (`counts.active` counts them all).
   */
  active: z.array(liveFrameSchema),
});
export type ShotView = z.output<typeof shotViewSchema>;

/** Frames per page of `GET /v1/shots/{id}/frames`: `limit` defaults to 100 and may be at most 500. */
export const FRAME_PAGE_LIMIT = { default: 100, max: 500 } as const;

/** `state=failed,cancelled` or `state=failed&state=cancelled`: one or more frame states. */
const frameStatesParam = z.preprocess(
  (v) => (v === undefined ? v : [v].flat().flatMap((s) => (typeof s === 'string' ? s.split(',').map((x) => x.trim()) : [s]))),
  z.array(z.enum(FRAME_STATES, { error: () => `one or more of ${FRAME_STATES.join(', ')}, comma-separated` })).min(1),
);

/** The query of `GET /v1/shots/{id}/frames`. */
export const frameQuerySchema = z.strictObject({
  /** Only frames in these states; all frames when absent. */
  state: frameStatesParam.optional(),
  /** `true`: only frames flagged for review by shot QA; `false`: only the others. All frames when absent. */
  flagged: z
    .enum(['true', 'false'], { error: () => 'true or false' })
    .transform((v) => v === 'true')
    .optional(),
  /** `needed`: flagged frames not approved yet; `approved`: approved frames. */
  review: z.enum(['needed', 'approved'], { error: () => 'needed or approved' }).optional(),
  /** `next` of the previous page. */
  cursor: z.string().regex(/^\d{1,9}$/, 'the `next` value of a previous page').optional(),
  limit: z.coerce.number().int().min(1).max(FRAME_PAGE_LIMIT.max).default(FRAME_PAGE_LIMIT.default),
});
export type FrameQuery = z.output<typeof frameQuerySchema>;

/** One page of a shot's frames, in frame order, with the URLs of their images. */
export const framePageSchema = z.object({
  frames: z.array(frameViewSchema),
  /**
   * Pass as `cursor` for the next page; null at the end. Pages follow frame numbers, so no frame
   * is listed twice; with a `state` or `flagged` filter, a frame whose state or flag changes while
   * you page may be missed (it moved behind the cursor).
   */
  next: z.string().min(1).nullable(),
});
export type FramePage = z.output<typeof framePageSchema>;

/** The body of `POST /v1/shots/{id}/frames/{frame}/rerender`. */
export const rerenderRequestSchema = z.strictObject({
  /** The new take's seed (0 … MAX_SEED); default: a new random one. */
  seed: z.number().int().min(0).max(MAX_SEED).optional(),
});
export type RerenderRequest = z.output<typeof rerenderRequestSchema>;

/** The body of `POST /v1/shots/{id}/rerender`: several frames in one round. */
export const rerenderFramesRequestSchema = z.strictObject({
  /** 1-based frame numbers (repeats ignored). */
  frames: z.array(z.number().int().min(1)).min(1).max(10_000),
  /** Every listed frame renders with this seed (0 … MAX_SEED); default: a new random one each. */
  seed: z.number().int().min(0).max(MAX_SEED).optional(),
});
export type RerenderFramesRequest = z.output<typeof rerenderFramesRequestSchema>;

/** Project shot QA thresholds (`GET`/`PUT /v1/qa/thresholds`): what is set, and what applies. */
export const qaThresholdsViewSchema = z.object({
  /** Set for the project (`PUT`); a submit's `qa.thresholds` overrides them per shot. */
  project: qaThresholdsSchema,
  /** What a shot submitted now is judged against when its request sets none. */
  effective: qaThresholdsSchema.required(),
});
export type QaThresholdsView = z.output<typeof qaThresholdsViewSchema>;

/** One PUT a client makes before `POST /v1/shots/{id}/start`. */
export const uploadSchema = z.object({
  field: z.string(),
  /** For a frame: its file name (`frames.fileNames`, or `00001.png`, …). */
  fileName: z.string().optional(),
  key: z.string(),
  method: z.literal('PUT'),
  /** A presigned store URL (PUT as is), or a path on this API (PUT with your API key). */
  url: z.string(),
  /** Headers the PUT must send (they are part of a presigned URL's signature). */
  headers: z.record(z.string(), z.string()),
});
export type Upload = z.output<typeof uploadSchema>;

/** The answer to a submit: the shot view, plus the uploads it awaits (upload style only). */
export const submitViewSchema = shotViewSchema.extend({ uploads: z.array(uploadSchema).optional() });
export type SubmitView = z.output<typeof submitViewSchema>;

export const shotListSchema = z.object({
  shots: z.array(shotSummarySchema),
  /** Pass as `before` for the next (older) page; null at the end. */
  next: z.string().min(1).nullable(),
});
export type ShotList = z.output<typeof shotListSchema>;
