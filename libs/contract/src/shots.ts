/**
 * /v1/shots on the wire: the submit (JSON or multipart), the list query, and the shot and frame
 * views. Field names in errors follow these schemas: `frames.keys[0]`, `settings.steps`, and for
 * multipart uploads `reference`, `background`, `frames[0]` (0-based).
 */
import { z } from 'zod';
import { errorInfoSchema, shotRecordSchema } from '@celfarm/jobs/records';
import { projectIdSchema } from '@celfarm/tenancy/project-id';
import { frameCountsSchema, frameStateSchema, SHOT_STATES } from './states.ts';

export { projectIdSchema } from '@celfarm/tenancy/project-id';

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

/** Frames in order: existing keys, every image under a prefix (sorted), or N presigned uploads. */
const framesInput = z
  .strictObject(
    {
      keys: z.array(objectKey).min(1).optional(),
      prefix: objectKey.optional(),
      upload: z.number().int().min(1).optional(),
    },
    requiredMessage,
  )
  .superRefine(exactlyOne(['keys', 'prefix', 'upload']));

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
});
export type ListQuery = z.output<typeof listQuerySchema>;

export const frameViewSchema = z.object({
  frame: z.number().int(),
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
});
export type FrameView = z.output<typeof frameViewSchema>;

export const shotSummarySchema = shotRecordSchema
  .pick({ id: true, project: true, state: true, createdAt: true, updatedAt: true, settings: true, seed: true, priority: true, pack: true, frameCount: true })
  .extend({
    counts: frameCountsSchema,
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
  });
export type ShotSummary = z.output<typeof shotSummarySchema>;

export const shotViewSchema = shotSummarySchema.extend({ frames: z.array(frameViewSchema) });
export type ShotView = z.output<typeof shotViewSchema>;

/** One PUT a client makes before `POST /v1/shots/{id}/start`. */
export const uploadSchema = z.object({
  field: z.string(),
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
