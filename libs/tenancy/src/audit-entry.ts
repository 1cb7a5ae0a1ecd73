/**
 * The audit log as data: an entry and a page of them, as stored and as `GET /v1/audit` answers.
 * Imports only zod, so the wire contract re-exports it for the browser as
 * `@celfarm/tenancy/audit-entry`; the log itself (Redis) is audit.ts.
 */
import { z } from 'zod';

/** Stream ids, the paging cursor, look like `1718000000000-0`. */
export const AUDIT_CURSOR = /^\d+-\d+$/;

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

/** Newest first. */
export const auditPageSchema = z.object({
  entries: z.array(auditEntrySchema),
  /** Pass as `before` for the next (older) page; null at the end. */
  next: z.string().min(1).nullable(),
});
export type AuditPage = z.output<typeof auditPageSchema>;
