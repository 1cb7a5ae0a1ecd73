/**
 * The webhook backlog on redis-server, as `celfarm_webhook_backlog` reads it: events in the outbox
 * not yet fanned out (unread by the dispatchers' group, or read and not acknowledged), deliveries
 * waiting for a worker and deliveries backing off after a failed attempt.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { EventBus, outboxKey } from '@celfarm/jobs';
import { startRedis, type RunningRedis, until } from '@celfarm/services';
import { WebhookBacklog } from '../src/backlog.ts';
import { startDeliveryWorker } from '../src/delivery.ts';
import { DISPATCH_GROUP, WebhookDispatcher } from '../src/dispatcher.ts';
import { EventArchive } from '../src/events.ts';
import { WebhookFanout } from '../src/fanout.ts';
import { SubscriptionStore } from '../src/subscriptions.ts';

describe('webhook backlog on redis-server', () => {
  const prefix = `wb${process.pid}`;
  let dir: string;
  let server: RunningRedis;
  let redis: Redis;
  let bull: Redis;
  let fanout: WebhookFanout;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-backlog-'));
    server = await startRedis(dir);
    redis = new Redis(server.url);
    bull = new Redis(server.url, { maxRetriesPerRequest: null });
  });
  after(async () => {
    await fanout?.close();
    redis.disconnect();
    bull.disconnect();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('counts outbox events not yet fanned out, and deliveries waiting or backing off', async () => {
    const subs = new SubscriptionStore(redis, prefix);
    fanout = new WebhookFanout(subs, new EventArchive(redis, prefix), { connection: bull, prefix, attempts: 3, backoffMs: 60_000 });
    const backlog = new WebhookBacklog(fanout.queue, redis, prefix);
    assert.deepEqual(await backlog.backlog(), { outbox: 0, waiting: 0, retrying: 0, active: 0 }, 'nothing published yet');

    const bus = new EventBus(redis, prefix);
    for (let i = 1; i <= 5; i++) await bus.publish('frame.completed', { project: 'demo', shotId: 'shotbl1', frame: i }, {});
    assert.equal((await backlog.backlog()).outbox, 0, 'no dispatcher ever started: webhooks are not delivered on this farm');
    // The group a dispatcher creates at start reads the outbox from its beginning.
    const dispatcher = new WebhookDispatcher(fanout, { redis, prefix });
    await dispatcher.ensureGroup();
    await dispatcher.stop();
    assert.equal((await backlog.backlog()).outbox, 5);
    // Read by a dispatcher that died before its fan-out: still not fanned out.
    const read = (await redis.xreadgroup('GROUP', DISPATCH_GROUP, 'dead-1', 'COUNT', 2, 'STREAMS', outboxKey(prefix), '>')) as [string, [string, string[]][]][];
    assert.equal((await backlog.backlog()).outbox, 5);
    await redis.xack(outboxKey(prefix), DISPATCH_GROUP, ...read[0]![1].map(([id]) => id));
    assert.equal((await backlog.backlog()).outbox, 3);

    // Deliveries (no worker here): one per event and matching subscription.
    await subs.create('demo', { url: 'https://hooks.example/a', events: ['*'] });
    await subs.create('demo', { url: 'https://hooks.example/b', events: ['frame.completed'] });
    const frame = (await bus.publish('frame.completed', { project: 'demo', shotId: 'shotbl1', frame: 6 }, {}))!;
    await fanout.fanout(frame);
    // Both deliveries of the frame fail once (the receiver answers 503) and back off.
    const worker = startDeliveryWorker(async () => {
      throw new Error('HTTP 503');
    }, { connection: bull, prefix });
    await until('both deliveries backing off', async () => (await fanout.queue.getDelayedCount()) === 2);
    await worker.close();
    const event = (await bus.publish('shot.completed', { project: 'demo', shotId: 'shotbl1' }, {}))!;
    await fanout.fanout(event);
    assert.deepEqual(await backlog.backlog(), { outbox: 5, waiting: 1, retrying: 2, active: 0 });
    // An entry deleted before it was read: Redis cannot tell the group's lag any more; the unread
    // entries are counted instead.
    const [[unread]] = (await redis.xrange(outboxKey(prefix), '-', '+', 'COUNT', 3)).slice(2);
    await redis.xdel(outboxKey(prefix), unread!);
    assert.equal((await backlog.backlog()).outbox, 4);
  });
});
