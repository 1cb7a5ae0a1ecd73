/** Request and response shapes of /v1/session, /v1/keys and /v1/audit (zod for validation, DTOs for the document). */
import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { auditEntrySchema } from '@celfarm/tenancy';
import { AUDIT_CURSOR, SCOPES } from '@celfarm/tenancy';

export const signInSchema = z.strictObject({
  /** An API key (`cf_…`); the session acts with its project and scopes. */
  key: z.string().min(1).max(256),
});
export type SignIn = z.output<typeof signInSchema>;

export const whoAmISchema = z.object({
  project: z.string(),
  keyId: z.string(),
  name: z.string(),
  scopes: z.array(z.enum(SCOPES)),
});
export type WhoAmI = z.output<typeof whoAmISchema>;

export const createKeySchema = z.strictObject({
  name: z.string().trim().min(1).max(100),
  scopes: z.array(z.enum(SCOPES)).min(1),
  /** Requests per second (token-bucket refill); default RATE_LIMIT_PER_SECOND. */
  rateLimit: z.number().positive().max(100_000).optional(),
});
export type CreateKey = z.output<typeof createKeySchema>;

export const keyViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  createdAt: z.string(),
  revokedAt: z.string().optional(),
  rateLimit: z.number().optional(),
});
export type KeyView = z.output<typeof keyViewSchema>;

/** The answer to a create: the only time the token is shown. */
export const createdKeySchema = keyViewSchema.extend({ token: z.string() });
export type CreatedKey = z.output<typeof createdKeySchema>;

export const keyListSchema = z.object({ keys: z.array(keyViewSchema) });
export type KeyList = z.output<typeof keyListSchema>;

export const auditQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  /** `next` of the previous page. */
  before: z.string().regex(AUDIT_CURSOR, 'the `next` value of a previous page').optional(),
});
export type AuditQuery = z.output<typeof auditQuerySchema>;

export const auditPageSchema = z.object({
  entries: z.array(auditEntrySchema),
  next: z.string().min(1).nullable(),
});

export class SignInDto extends createZodDto(signInSchema) {}
export class WhoAmIDto extends createZodDto(whoAmISchema) {}
export class CreateKeyDto extends createZodDto(createKeySchema) {}
export class CreatedKeyDto extends createZodDto(createdKeySchema) {}
export class KeyListDto extends createZodDto(keyListSchema) {}
export class AuditPageDto extends createZodDto(auditPageSchema) {}
