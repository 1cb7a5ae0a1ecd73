/**
 * The audit log: one Redis stream per project, `{prefix}:audit:{project}`, holding every mutating
 * API call made with one of its keys (refusals included), capped at about `maxLength` entries.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';

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
export type AuditEntry = z.infer<typeof auditEntrySchema>;

export interface AuditPage {
  entries: AuditEntry[];
  /** Pass as `before` for the next (older) page; null at the end. */
  next: string | null;
}

/** Stream ids look like `1718000000000-0`. */
export const AUDIT_CURSOR = /^\d+-\d+$/;

export class AuditLog {
  constructor(
    readonly redis: Redis,
    readonly prefix = 'celfarm',
    /** Entries kept per project (approximately: trimming is done in whole stream nodes). */
    readonly maxLength = 100_000,
  ) {}

  private key(project: string): string {
    return `${this.prefix}:audit:${project}`;
  }

  async append(project: string, entry: Omit<AuditEntry, 'id'>): Promise<string> {
    const fields: string[] = [];
    for (const [k, v] of Object.entries(entry)) if (v !== undefined) fields.push(k, String(v));
    const id = await this.redis.xadd(this.key(project), 'MAXLEN', '~', this.maxLength, '*', ...fields);
    return id!;
  }

  /** Newest first; `before` is the `next` of the previous page. */
  async list(project: string, opts: { limit: number; before?: string }): Promise<AuditPage> {
    const end = opts.before ? `(${opts.before}` : '+';
    const rows = await this.redis.xrevrange(this.key(project), end, '-', 'COUNT', opts.limit + 1);
    const entries = rows.slice(0, opts.limit).map(([id, flat]) => {
      const o: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) o[flat[i]!] = flat[i + 1]!;
      return auditEntrySchema.parse({ ...o, id, status: Number(o.status) });
    });
    return { entries, next: rows.length > opts.limit ? entries[entries.length - 1]!.id : null };
  }
}
