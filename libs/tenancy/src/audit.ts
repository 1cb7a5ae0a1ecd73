/**
 * The audit log: one Redis stream per project, `{prefix}:audit:{project}`, holding every mutating
 * API call made with one of its keys (refusals included), capped at about `maxLength` entries.
 */
import type { Cluster, Redis } from 'ioredis';
import { auditEntrySchema, type AuditEntry, type AuditPage } from './audit-entry.ts';

export { AUDIT_CURSOR, auditEntrySchema, auditPageSchema, type AuditEntry, type AuditPage } from './audit-entry.ts';

export class AuditLog {
  constructor(
    readonly redis: Redis | Cluster,
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
