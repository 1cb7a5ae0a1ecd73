/**
 * The oldest waiting job of a queue on redis-server, as `celfarm_queue_oldest_waiting_seconds`
 * reads it: found behind any number of higher-priority jobs, in the wait list, never a delayed
 * job (backing off, not waiting for a worker); and per farm queue.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startRedis, type RunningRedis } from '@celfarm/services';
import { oldestWaitingTimestamp } from '../src/queue-age.ts';
import { FarmQueues } from '../src/queues.ts';

describe('oldest waiting job on redis-server', () => {
  const prefix = `qa${process.pid}`;
  let dir: string;
  let server: RunningRedis;
  let bull: Redis;
  const queues: Queue[] = [];
  const queue = (name: string) => {
    const q = new Queue(name, { connection: bull, prefix });
    queues.push(q);
    return q;
  };
  const T = Date.parse('2026-03-01T12:00:00Z');

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-queue-age-'));
    server = await startRedis(dir);
    bull = new Redis(server.url, { maxRetriesPerRequest: null });
  });
  after(async () => {
    await Promise.all(queues.map((q) => q.close()));
    bull.disconnect();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('is null for a queue where nothing waits', async () => {
    assert.equal(await oldestWaitingTimestamp(queue('empty')), null);
  });

  it('finds a low-priority job starved behind newer high-priority ones, and skips delayed jobs', async () => {
    const q = queue('frames-a');
    await q.add('frame', {}, { jobId: 'starved', priority: 90, timestamp: T - 600_000 });
    await q.addBulk(Array.from({ length: 300 }, (_, i) => ({ name: 'frame', data: {}, opts: { jobId: `urgent-${i}`, priority: 1, timestamp: T - 10_000 + i } })));
    await q.add('frame', {}, { jobId: 'middle', priority: 40, timestamp: T - 60_000 });
    await q.add('frame', {}, { jobId: 'plain', timestamp: T - 30_000 });
    // Backing off before a retry (or added with a delay): a timer holds it, not the farm's capacity.
    await q.add('frame', {}, { jobId: 'backing-off', priority: 1, delay: 3_600_000, timestamp: T - 3_600_000 });
    assert.equal(await oldestWaitingTimestamp(q), T - 600_000);

    await (await q.getJob('starved'))!.remove();
    assert.equal(await oldestWaitingTimestamp(q), T - 60_000, 'the next priority in use');
    await (await q.getJob('middle'))!.remove();
    assert.equal(await oldestWaitingTimestamp(q), T - 30_000, 'the wait list (jobs without a priority)');
    // Bounded: with one priority looked at, the first in line of priority 1 and the wait list.
    await q.add('frame', {}, { jobId: 'starved-again', priority: 90, timestamp: T - 900_000 });
    assert.equal(await oldestWaitingTimestamp(q, 1), T - 30_000);
    assert.equal(await oldestWaitingTimestamp(q), T - 900_000);
  });

  it('reads every farm queue at once, keyed by queue', async () => {
    const farm = new FarmQueues({ connection: bull, prefix: `${prefix}f`, frameAttempts: 2 });
    try {
      const before = Date.now();
      await farm.enqueuePrepare({ shotId: 'shotageaaa1', project: 'demo' }, 50);
      const oldest = await farm.oldestWaiting();
      assert.deepEqual(Object.keys(oldest).sort(), ['frames', 'prepare', 'shots']);
      assert.equal(oldest.frames, null);
      assert.equal(oldest.shots, null);
      const job = (await farm.queues.prepare.getJob('shotageaaa1-prepare'))!;
      assert.equal(oldest.prepare, job.timestamp, "the job's enqueue time");
      assert.ok(job.timestamp >= before);
    } finally {
      await farm.close();
    }
  });
});
