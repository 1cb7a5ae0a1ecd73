/**
 * The farm's own queue-age and webhook metrics as Prometheus reads them: the oldest waiting job's
 * age from its enqueue time and an injected clock, delivery outcomes that count from 0 per
 * project, and the webhook backlog read at scrape time (and kept while Redis is away).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMetrics, type QueueDepthSource, type WebhookBacklogSource } from '../src/index.ts';

/** The value of `name{labels}` in the registry's exposition text (labels in any order). */
async function sample(metrics: ReturnType<typeof createMetrics>, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = await metrics.registry.metrics();
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe('celfarm_queue_oldest_waiting_seconds', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  const queues = (oldest: Record<string, number | null>): QueueDepthSource => ({
    depths: async () => ({}),
    oldestWaiting: async () => oldest,
  });

  it('is the age of the oldest waiting job per queue, 0 for a queue where none waits', async () => {
    const metrics = createMetrics('worker', queues({ frames: now - 95_500, prepare: null, shots: now - 2_000 }), { clock: () => now });
    assert.equal(await sample(metrics, 'celfarm_queue_oldest_waiting_seconds', { queue: 'frames', role: 'worker' }), 95.5);
    assert.equal(await sample(metrics, 'celfarm_queue_oldest_waiting_seconds', { queue: 'prepare' }), 0);
    assert.equal(await sample(metrics, 'celfarm_queue_oldest_waiting_seconds', { queue: 'shots' }), 2);
  });

  it('grows with the clock between scrapes while the job waits, and never goes below 0', async () => {
    let t = now;
    const metrics = createMetrics('api', queues({ frames: now + 1_000 }), { clock: () => t });
    assert.equal(await sample(metrics, 'celfarm_queue_oldest_waiting_seconds', { queue: 'frames' }), 0, 'an enqueue time a little ahead of this clock');
    t = now + 61_000;
    assert.equal(await sample(metrics, 'celfarm_queue_oldest_waiting_seconds', { queue: 'frames' }), 60);
  });

  it('keeps the last ages while Redis is away', async () => {
    let up = true;
    const metrics = createMetrics('api', {
      depths: async () => ({}),
      oldestWaiting: async () => {
        if (!up) throw new Error('connect ECONNREFUSED');
        return { frames: now - 10_000 };
      },
    }, { clock: () => now });
    assert.equal(await sample(metrics, 'celfarm_queue_oldest_waiting_seconds', { queue: 'frames' }), 10);
    up = false;
    assert.equal(await sample(metrics, 'celfarm_queue_oldest_waiting_seconds', { queue: 'frames' }), 10);
  });
});

describe('webhook delivery metrics', () => {
  it('counts each run of a delivery job by project and outcome, every outcome of a project from 0', async () => {
    const metrics = createMetrics('api');
    metrics.webhookDelivery.record({ project: 'studio-a', outcome: 'delivered', latencySeconds: 0.3 });
    metrics.webhookDelivery.record({ project: 'studio-a', outcome: 'retrying', reason: 'http_5xx' });
    metrics.webhookDelivery.record({ project: 'studio-a', outcome: 'retrying', reason: 'timeout' });
    metrics.webhookDelivery.record({ project: 'studio-a', outcome: 'failed', reason: 'http_5xx' });
    const deliveries = (outcome: string, project = 'studio-a') => sample(metrics, 'celfarm_webhook_deliveries_total', { project, outcome });
    assert.deepEqual(
      [await deliveries('delivered'), await deliveries('retrying'), await deliveries('failed'), await deliveries('skipped')],
      [1, 2, 1, 0],
    );
    assert.equal(await deliveries('delivered', 'studio-b'), undefined, 'a project with no delivery has no series');
    const failures = (reason: string) => sample(metrics, 'celfarm_webhook_attempt_failures_total', { reason });
    assert.deepEqual([await failures('http_5xx'), await failures('timeout'), await failures('refused')], [2, 1, 0]);
    // Latency: only the delivered run, in its bucket.
    assert.equal(await sample(metrics, 'celfarm_webhook_delivery_latency_seconds_count', {}), 1);
    assert.equal(await sample(metrics, 'celfarm_webhook_delivery_latency_seconds_bucket', { le: '0.25' }), 0);
    assert.equal(await sample(metrics, 'celfarm_webhook_delivery_latency_seconds_bucket', { le: '0.5' }), 1);
  });

  it('reads the backlog at every scrape, and keeps the last numbers while Redis is away', async () => {
    const metrics = createMetrics('api');
    let backlog: Awaited<ReturnType<WebhookBacklogSource['backlog']>> | Error = { outbox: 3, waiting: 7, retrying: 2, active: 1 };
    metrics.setWebhookBacklogSource({
      backlog: async () => {
        if (backlog instanceof Error) throw backlog;
        return backlog;
      },
    });
    const stage = (s: string) => sample(metrics, 'celfarm_webhook_backlog', { stage: s });
    assert.deepEqual([await stage('outbox'), await stage('waiting'), await stage('retrying'), await stage('active')], [3, 7, 2, 1]);
    backlog = { outbox: 0, waiting: 9, retrying: 2, active: 0 };
    assert.equal(await stage('waiting'), 9);
    backlog = new Error('connect ECONNREFUSED');
    assert.equal(await stage('waiting'), 9);
  });

  it('is served by the API only', async () => {
    const worker = createMetrics('worker');
    worker.webhookDelivery.record({ project: 'studio-a', outcome: 'delivered', latencySeconds: 1 });
    const text = await worker.registry.metrics();
    assert.doesNotMatch(text, /celfarm_webhook_/);
    assert.match(text, /celfarm_queue_oldest_waiting_seconds/);
    assert.match(await createMetrics('api').registry.metrics(), /# TYPE celfarm_webhook_deliveries_total counter/);
  });
});
