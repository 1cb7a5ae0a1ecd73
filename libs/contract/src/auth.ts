/**
 * /v1/session, /v1/keys and /v1/audit on the wire: signing in, API keys and the audit log. Scopes
 * and audit entries are libs/tenancy's own, re-exported from its zod-only modules.
 */
import { z } from 'zod';
import { AUDIT_CURSOR } from '@celfarm/tenancy/audit-entry';
import { SCOPES } from '@celfarm/tenancy/scopes';

export { SCOPES, type Scope } from '@celfarm/tenancy/scopes';
export { auditEntrySchema, auditPageSchema, type AuditEntry, type AuditPage } from '@celfarm/tenancy/audit-entry';

export const signInSchema = z.strictObject({
  /** An API key (`cf_…`); the session acts with its project and scopes. */
  key: z.string().min(1).max(256),
});
export type SignIn = z.output<typeof signInSchema>;

/** `GET /v1/session`: who is calling. */
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
export type CreateKeyInput = z.input<typeof createKeySchema>;

/** A key as listed: never its token or hash. */
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

/** The query of `GET /v1/audit`. */
export const auditQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  /** `next` of the previous page (a stream id, `1718000000000-0`). */
  before: z.string().regex(AUDIT_CURSOR, 'the `next` value of a previous page').optional(),
});
export type AuditQuery = z.output<typeof auditQuerySchema>;
