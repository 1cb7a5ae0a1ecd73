/**
 * Webhook work not delivered yet, read at scrape time for `celfarm_webhook_backlog`: a handful
 * of O(1) Redis reads whatever the backlog's size (XINFO GROUPS on the outbox, BullMQ's job
 * counts of the `webhooks` queue).
 */
import type { Queue } from 'bullmq';
import { outboxKey, type RedisClient } from '@celfarm/jobs';
import { DISPATCH_GROUP } from './dispatcher.ts';

export interface WebhookBacklogCounts {
  /**
   * Events published but not yet fanned out to subscriptions: outbox entries the dispatchers'
   * consumer group has not read (its lag) plus those read but not acknowledged (pending). 0
   * while the group does not exist (no dispatcher ever started: webhooks not delivered here).
   */
  outbox: number;
  /** Deliveries (one per event and subscription) waiting for a delivery worker. */
  waiting: number;
  /** Deliveries backing off after a failed attempt. */
  retrying: number;
  /** Deliveries being posted. */
  active: number;
}

/**
 * Entries counted after the group's last-read entry when Redis cannot give the lag (entries
 * deleted inside the range): the count is then "at least".
 */
const LAG_FALLBACK_MAX = 1000;

export class WebhookBacklog {
  private readonly key: string;

  constructor(
    /** The `webhooks` delivery queue (WebhookFanout's). */
    private readonly queue: Queue,
    /** A connection for the outbox reads. */
    private readonly redis: RedisClient,
    /** Redis key prefix (REDIS_PREFIX). */
    prefix: string,
    private readonly group = DISPATCH_GROUP,
  ) {
    this.key = outboxKey(prefix);
  }

  async backlog(): Promise<WebhookBacklogCounts> {
    const [counts, outbox] = await Promise.all([this.queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active'), this.outbox()]);
    return { outbox, waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0), retrying: counts.delayed ?? 0, active: counts.active ?? 0 };
  }

  private async outbox(): Promise<number> {
    let groups: unknown;
    try {
      groups = await this.redis.xinfo('GROUPS', this.key);
    } catch (e) {
      // No outbox yet: nothing was ever published.
      if (/no such key/i.test(e instanceof Error ? e.message : String(e))) return 0;
      throw e;
    }
    // Each group: a flat [field, value, …] array (RESP2).
    const group = (groups as unknown[][]).map((g) => {
      const fields = new Map<string, unknown>();
      for (let i = 0; i + 1 < g.length; i += 2) fields.set(String(g[i]), g[i + 1]);
      return fields;
    }).find((f) => f.get('name') === this.group);
    if (!group) return 0;
    const pending = Number(group.get('pending') ?? 0);
    const lag = group.get('lag');
    if (lag !== null && lag !== undefined) return pending + Number(lag);
    const last = String(group.get('last-delivered-id') ?? '0-0');
    const unread = (await this.redis.xrange(this.key, `(${last}`, '+', 'COUNT', LAG_FALLBACK_MAX)).length;
    return pending + unread;
  }
}
