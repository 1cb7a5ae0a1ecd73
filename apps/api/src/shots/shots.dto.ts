/**
 * /v1/shots in the OpenAPI document: nestjs-zod DTOs of the wire contract (@celfarm/contract),
 * whose schemas the controller and the services validate with. The schemas and types are
 * re-exported for the shots module's own files.
 */
import { createZodDto } from 'nestjs-zod';
import { framePageSchema, frameViewSchema, jsonSubmitSchema, rerenderFramesRequestSchema, rerenderRequestSchema, shotListSchema, shotViewSchema, submitViewSchema } from '@celfarm/contract';
import { settingsSchema } from '@celfarm/pipeline/settings';

export {
  formRequestSchema,
  framePageSchema,
  frameQuerySchema,
  frameViewSchema,
  idempotencyKeySchema,
  jsonSubmitSchema,
  listQuerySchema,
  shotListSchema,
  shotSummarySchema,
  shotViewSchema,
  submitViewSchema,
  uploadSchema,
} from '@celfarm/contract';
export type { FormRequest, FramePage, FrameQuery, FrameView, JsonSubmit, RerenderRequest, ListQuery, ShotList, ShotSummary, ShotView, SubmitView, Upload } from '@celfarm/contract';

/** For the document only: the settings knobs spelled out (the runtime check is resolveSettings). */
export class SubmitShotDto extends createZodDto(jsonSubmitSchema.extend({ settings: settingsSchema.optional() })) {}
export class ShotViewDto extends createZodDto(shotViewSchema) {}
export class SubmitViewDto extends createZodDto(submitViewSchema) {}
export class ShotListDto extends createZodDto(shotListSchema) {}
export class FramePageDto extends createZodDto(framePageSchema) {}
export class FrameViewDto extends createZodDto(frameViewSchema) {}
export class RerenderRequestDto extends createZodDto(rerenderRequestSchema) {}
export class RerenderFramesRequestDto extends createZodDto(rerenderFramesRequestSchema) {}
