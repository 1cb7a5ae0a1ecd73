/**
 * Request and response shapes of /v1/shots, as zod schemas (the validation) and nestjs-zod DTOs
 * (the OpenAPI document). Field names in errors follow these schemas: `frames.keys[0]`,
 * `settings.steps`, and for multipart uploads `reference`, `background`, `frames[0]` (0-based).
 */
import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { FRAME_STATES, SHOT_STATES, shotRecordSchema } from '@celfarm/jobs';
import { settingsSchema } from '@celfarm/pipeline/settings';

export const projectSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'a lowercase slug: letters, digits, _ and -, starting with a letter or digit, at most 64');

/** Only the shape is checked here; resolveSettings validates every knob against the pack. */
const settingsInput = z.record(z.string(), z.unknown()).meta({ description: 'Pipeline knobs (shared/model-contract.md §5); unknown keys are refused.' });

const requestFields = {
  /** Defaults to the API key's project; any other is refused (403). */
  project: projectSchema.optional(),
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

export const jsonSubmitSchema = z.strictObject({
  ...requestFields,
  reference: imageInput,
  background: imageInput.optional(),
  frames: framesInput,
});
export type JsonSubmit = z.output<typeof jsonSubmitSchema>;

/** For the document only: the settings knobs spelled out (the runtime check is resolveSettings). */
export class SubmitShotDto extends createZodDto(jsonSubmitSchema.extend({ settings: settingsSchema.optional() })) {}

export const idempotencyKeySchema = z.string().regex(/^[\x21-\x7e]{1,200}$/, '1–200 visible ASCII characters').optional();

export const listQuerySchema = z.strictObject({
  state: z.enum(SHOT_STATES).optional(),
  project: projectSchema.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  /** `next` of the previous page. */
  before: z.string().regex(/^\d+(\.[a-z0-9]+)?$/, 'the `next` value of a previous page').optional(),
});
export type ListQuery = z.output<typeof listQuerySchema>;

const errorInfo = z.object({ code: z.string(), field: z.string().optional(), message: z.string() });

export const frameViewSchema = z.object({
  frame: z.number().int(),
  state: z.enum(FRAME_STATES),
  stage: z.string().optional(),
  step: z.number().int().optional(),
  steps: z.number().int().optional(),
  attempts: z.number().int(),
  worker: z.string().optional(),
  seed: z.number().int(),
  error: errorInfo.optional(),
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
  counts: z.object(Object.fromEntries(FRAME_STATES.map((s) => [s, z.number().int()])) as Record<(typeof FRAME_STATES)[number], z.ZodNumber>),
  /** 0–1: completed frames plus the sampled share of active ones, over the frame count. */
  progress: z.number(),
  /**
   * Seconds left at the live worker count; null until a frame has completed. (The `.min(0)`
   * also keeps nestjs-zod 5.5 from documenting a bare nullable as an array, its issue #473.)
   */
  etaSeconds: z.number().min(0).nullable(),
  failedFrameShare: z.number(),
  awaitingUploads: z.boolean(),
  round: z.number().int(),
  inputs: z.object({ reference: z.string(), background: z.string().optional() }),
  error: errorInfo.optional(),
});
export type ShotSummary = z.output<typeof shotSummarySchema>;

export const shotViewSchema = shotSummarySchema.extend({ frames: z.array(frameViewSchema) });
export type ShotView = z.output<typeof shotViewSchema>;

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

export const submitViewSchema = shotViewSchema.extend({ uploads: z.array(uploadSchema).optional() });
export type SubmitView = z.output<typeof submitViewSchema>;

export const shotListSchema = z.object({ shots: z.array(shotSummarySchema), next: z.string().min(1).nullable() });
export type ShotList = z.output<typeof shotListSchema>;

export class ShotViewDto extends createZodDto(shotViewSchema) {}
export class SubmitViewDto extends createZodDto(submitViewSchema) {}
export class ShotListDto extends createZodDto(shotListSchema) {}

const errorBodySchema = z.object({ error: errorInfo });
export class ErrorDto extends createZodDto(errorBodySchema) {}
