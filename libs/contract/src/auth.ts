/** /v1/session, /v1/keys and /v1/audit on the wire: signing in, API keys and the audit log. */
import { z } from 'zod';

/** What a key may do: submit (and cancel, retry, delete) shots, read them, administer the project. */
export const SCOPES = ['submit', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

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
  before: z.string().regex(/^\d+-\d+$/, 'the `next` value of a previous page').optional(),
});
export type AuditQuery = z.output<typeof auditQuerySchema>;

/** One mutating call made with a key of the project (refusals included). */
export const auditEntrySchema = z.object({
  /** Stream id; also the paging cursor. */
  id: z.string(),
  at: z.string(),
  keyId: z.string(),
  keyName: z.string(),
  method: z.string(),
  /** Route pattern, e.g. `/v1/shots/:id/cancel` (`unmatched` when no route matched). */
  route: z.string(),
  /** The request path, without its query string. */
  path: z.string(),
  status: z.number().int(),
  /** What the call was about: the `:id` of the route, or the id of what it created. */
  target: z.string().optional(),
});
export type AuditEntry = z.output<typeof auditEntrySchema>;

export const auditPageSchema = z.object({
  entries: z.array(auditEntrySchema),
  /** Pass as `before` for the next (older) page; null at the end. */
  next: z.string().min(1).nullable(),
});
export type AuditPage = z.output<typeof auditPageSchema>;
