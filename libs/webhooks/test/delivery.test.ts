/**
 * Fan-out and delivery against a real redis-server and a local HTTP receiver: one job per
 * (event, matching subscription) however often an event is fanned out, signed deliveries that
 * verify, retries on a non-2xx answer, and a target refused at delivery time stopping at once.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { EventBus } from '@celfarm/jobs';
import { startRedis, type RunningRedis, until as waitUntil } from '@celfarm/services';
import { createDeliveryProcessor, startDeliveryWorker, WebhookDeliverer } from '../src/delivery.ts';
import { DeliveryLog } from '../src/delivery-log.ts';
import { failureReason, noAnswerMessage, type DeliveryReport } from '../src/delivery-report.ts';
import { EventArchive, type WebhookEvent } from '../src/events.ts';
import { deliveryJobId, WebhookFanout } from '../src/fanout.ts';
import { verify } from '../src/signing.ts';
import { SubscriptionStore } from '../src/subscriptions.ts';
import type { Lookup } from '../src/targets.ts';

const until = <T>(what: string, probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 10_000) =>
  waitUntil(what, probe, { timeoutMs });

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}


describe('webhook fan-out and delivery on redis-server', () => {
  const prefix = `wt${process.pid}`;
  let dir: string;
  let server: RunningRedis;
  let redis: Redis;
  let bull: Redis;
  let receiver: Server;
  let base: string;
  const received: Received[] = [];
  /** Answers per path, consumed in order; 200 once a path's list is empty. */
  const script = new Map<string, number[]>();
  const allow = new Map<string, string[]>();
  let subs: SubscriptionStore;
  let fanout: WebhookFanout;
  let log: DeliveryLog;
  let worker: Worker;
  let bus: EventBus;

  // rebound.test resolves to the receiver's loopback address: refused unless allow-listed.
  const lookup: Lookup = async (host) => {
    if (host === 'rebound.test') return [{ address: '127.0.0.1', family: 4 }];
    throw new Error(`getaddrinfo ENOTFOUND ${host}`);
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-webhooks-'));
    server = await startRedis(dir);
    redis = new Redis(server.url);
    bull = new Redis(server.url, { maxRetriesPerRequest: null });
    receiver = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', headers: req.headers, body, at: Date.now() });
        res.statusCode = script.get(req.url ?? '')?.shift() ?? 200;
        res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    subs = new SubscriptionStore(redis, prefix);
    const archive = new EventArchive(redis, prefix);
    log = new DeliveryLog(redis, prefix);
    fanout = new WebhookFanout(subs, archive, { connection: bull, prefix, attempts: 3, backoffMs: 100 });
    const deliverer = new WebhookDeliverer({ log, allowHosts: async (p) => allow.get(p) ?? [], timeoutMs: 2000, lookup });
    worker = startDeliveryWorker(createDeliveryProcessor(deliverer, subs), { connection: bull, prefix, concurrency: 4 });
    bus = new EventBus(redis, prefix);
  });
  after(async () => {
    await worker?.close();
    await fanout?.close();
    await new Promise<void>((r) => receiver.close(() => r()));
    redis.disconnect();
    bull.disconnect();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('delivers each event once per matching subscription, signed, however often it is fanned out', async () => {
    allow.set('alpha', ['127.0.0.1']);
    const all = await subs.create('alpha', { url: `${base}/all`, events: ['*'] });
    const frames = await subs.create('alpha', { url: `${base}/frames`, events: ['frame.completed'] });
    await subs.create('beta', { url: `${base}/beta`, events: ['*'] });

    const created = await bus.publish('shot.created', { project: 'alpha', shotId: 'shot1' }, { frameCount: 2 });
    assert.ok(created);
    await fanout.fanout(created);
    // Published again (a redelivered job): the bus refuses the id, there is nothing to fan out.
    assert.equal(await bus.publish('shot.created', { project: 'alpha', shotId: 'shot1' }, { frameCount: 2 }), null);
    const frame = await bus.publish('frame.completed', { project: 'alpha', shotId: 'shot1', frame: 1 }, { output: 'k' });
    assert.ok(frame);
    await fanout.fanout(frame);
    // A repeated fan-out of the same event adds no job.
    assert.deepEqual(await fanout.fanout(frame), [deliveryJobId(frame.id, all.id), deliveryJobId(frame.id, frames.id)]);

    await until('three deliveries', () => (received.length >= 3 ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    const byPath = (p: string) => received.filter((r) => r.path === p);
    assert.deepEqual(byPath('/all').map((r) => JSON.parse(r.body).type).sort(), ['frame.completed', 'shot.created']);
    assert.deepEqual(byPath('/frames').map((r) => JSON.parse(r.body).type), ['frame.completed']);
    assert.equal(byPath('/beta').length, 0, 'another project hears nothing');
    for (const r of received) {
      const sub = r.path === '/all' ? all : frames;
      const { id } = verify(sub.secret, r.headers, r.body);
      assert.equal(id, JSON.parse(r.body).id);
      assert.equal(r.headers['content-type'], 'application/json');
    }
    const body = JSON.parse(byPath('/frames')[0]!.body);
    assert.deepEqual(body, { id: frame.id, type: 'frame.completed', createdAt: frame.createdAt, project: 'alpha', shotId: 'shot1', frame: 1, data: { output: 'k' } });
    // Each entry is written once its receiver has answered: waited for, not read after a sleep.
    const entries = await until('two log entries', async () => {
      const l = await log.list('alpha', all.id);
      return l.length >= 2 ? l : undefined;
    });
    assert.equal(entries.length, 2);
    assert.ok(entries.every((e) => e.delivered && e.status === 200 && e.attempt === 1));
  });

  it('retries a failing receiver with backoff and logs every attempt', async () => {
    allow.set('gamma', ['127.0.0.1']);
    script.set('/flaky', [503, 500]);
    const sub = await subs.create('gamma', { url: `${base}/flaky`, events: ['shot.completed'] });
    const event = (await bus.publish('shot.completed', { project: 'gamma', shotId: 'shot2' }, {}))!;
    await fanout.fanout(event);
    const hits = await until('three attempts', () => {
      const h = received.filter((r) => r.path === '/flaky');
      return h.length >= 3 ? h : undefined;
    });
    assert.ok(hits[1]!.at - hits[0]!.at >= 90, `first retry after ${hits[1]!.at - hits[0]!.at} ms`);
    assert.ok(hits[2]!.at - hits[1]!.at >= 190, `second retry after ${hits[2]!.at - hits[1]!.at} ms`);
    assert.ok(hits.every((h) => h.headers['webhook-id'] === event.id), 'the same webhook-id on every attempt');
    const entries = (await until('three log entries', async () => {
      const l = await log.list('gamma', sub.id);
      return l.length >= 3 ? l : undefined;
    })).reverse();
    assert.deepEqual(entries.map((e) => [e.attempt, e.status, e.delivered]), [[1, 503, false], [2, 500, false], [3, 200, true]]);
  });

  it('refuses at delivery time a target that is no longer allowed, without retrying', async () => {
    allow.set('delta', ['rebound.test']);
    const sub = await subs.create('delta', { url: 'http://rebound.test:9/x', events: ['*'] });
    allow.set('delta', []);
    const event: WebhookEvent = (await bus.publish('shot.failed', { project: 'delta', shotId: 'shot3' }, {}))!;
    const [jobId] = await fanout.fanout(event);
    await until('the job to fail', async () => (await fanout.queue.getJobState(jobId!)) === 'failed');
    // Read once failed: a job read before its failure was recorded still says 0 attempts.
    const job = (await fanout.queue.getJob(jobId!))!;
    assert.equal(job.attemptsMade, 1, 'no retries for a refused target');
    const [entry] = await log.list('delta', sub.id);
    assert.equal(entry?.refused, true);
    assert.match(entry!.error!, /private or loopback address not allowed; an admin can allow-list it \(rebound\.test → 127\.0\.0\.1 is loopback\)/);
  });

  it('skips the deliveries of a deleted subscription', async () => {
    allow.set('eps', ['127.0.0.1']);
    const sub = await subs.create('eps', { url: `${base}/gone`, events: ['*'] });
    await worker.pause();
    try {
      const event = (await bus.publish('shot.created', { project: 'eps', shotId: 'shot4' }, {}))!;
      await fanout.fanout(event);
      await subs.delete('eps', sub.id);
    } finally {
      await worker.resume();
    }
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(received.filter((r) => r.path === '/gone').length, 0);
  });

  it('never posts an accepted event again because its log entry could not be written (Redis away)', async () => {
    allow.set('zeta', ['127.0.0.1']);
    const sub = await subs.create('zeta', { url: `${base}/once`, events: ['*'] });
    /** A log whose writes fail `failures` times, as while Redis restarts. */
    class FlakyLog extends DeliveryLog {
      constructor(public failures: number) {
        super(redis, prefix);
      }
      override async append(...args: Parameters<DeliveryLog['append']>): Promise<void> {
        if (this.failures-- > 0) throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
        await super.append(...args);
      }
    }
    const lost: string[] = [];
    const deliver = async (flaky: FlakyLog, logRetryMs: number) => {
      const deliverer = new WebhookDeliverer({ log: flaky, allowHosts: async () => ['127.0.0.1'], timeoutMs: 2000, logRetryMs, onLogError: (e) => lost.push(e.message) });
      const event = (await bus.publish('shot.completed', { project: 'zeta', shotId: `shot-${flaky.failures}` }, {}))!;
      const job = { data: { project: 'zeta', subscriptionId: sub.id, event }, attemptsMade: 0 } as unknown as Parameters<ReturnType<typeof createDeliveryProcessor>>[0];
      // The processor must resolve (BullMQ completes the job) rather than throw (BullMQ would retry: a second POST).
      return { event, outcome: await createDeliveryProcessor(deliverer, subs)(job) };
    };
    // Redis back within the retry window: one POST, and the attempt is logged.
    const first = await deliver(new FlakyLog(3), 10_000);
    assert.equal(received.filter((r) => r.headers['webhook-id'] === first.event.id).length, 1);
    assert.ok('delivered' in first.outcome && first.outcome.delivered);
    assert.deepEqual((await log.list('zeta', sub.id)).map((e) => e.eventId), [first.event.id]);
    // Redis away past the window: still one POST, the delivery stands, the lost entry is reported.
    const second = await deliver(new FlakyLog(1_000), 400);
    assert.equal(received.filter((r) => r.headers['webhook-id'] === second.event.id).length, 1);
    assert.ok('delivered' in second.outcome && second.outcome.delivered);
    assert.deepEqual(lost, ['connect ECONNREFUSED 127.0.0.1:6379']);
    // The job of an accepted event run again (its process died before completing it): no POST;
    // a redelivery asked for by a user posts again.
    const rerun = { data: { project: 'zeta', subscriptionId: sub.id, event: first.event }, attemptsMade: 1 } as unknown as Parameters<ReturnType<typeof createDeliveryProcessor>>[0];
    const deliverer = new WebhookDeliverer({ log, allowHosts: async () => ['127.0.0.1'], timeoutMs: 2000 });
    assert.deepEqual(await createDeliveryProcessor(deliverer, subs)(rerun), { skipped: `event ${first.event.id} was already delivered` });
    assert.equal(received.filter((r) => r.headers['webhook-id'] === first.event.id).length, 1);
    const asked = { ...rerun, data: { ...rerun.data, redelivery: true } } as typeof rerun;
    assert.ok('delivered' in (await createDeliveryProcessor(deliverer, subs)(asked)));
    assert.equal(received.filter((r) => r.headers['webhook-id'] === first.event.id).length, 2);
  });
  it('reports how every run of a delivery job ended: outcome, why an attempt failed, latency from publication', async () => {
    allow.set('eta', ['127.0.0.1']);
    script.set('/eta-down', [503, 503]);
    script.set('/eta-gone', [404]);
    const up = await subs.create('eta', { url: `${base}/eta-up`, events: ['*'] });
    const down = await subs.create('eta', { url: `${base}/eta-down`, events: ['*'] });
    const gone = await subs.create('eta', { url: `${base}/eta-gone`, events: ['*'] });
    const closed = await subs.create('eta', { url: 'http://127.0.0.1:9/closed', events: ['*'] });
    const reports: DeliveryReport[] = [];
    // The attempt starts 42 s after the event was published (the deliverer's clock).
    let published = 0;
    const deliverer = new WebhookDeliverer({ log, allowHosts: async (p) => allow.get(p) ?? [], timeoutMs: 2000, lookup, clock: () => new Date(published + 42_000) });
    const processor = createDeliveryProcessor(deliverer, subs, { observer: { record: (r) => reports.push(r) } });
    type Job = Parameters<typeof processor>[0];
    const run = async (sub: { id: string }, attemptsMade: number, extra: { redelivery?: true } = {}) => {
      const event = (await bus.publish('shot.completed', { project: 'eta', shotId: `shot${reports.length}x` }, {}))!;
      published = Date.parse(event.createdAt);
      const job = { data: { project: 'eta', subscriptionId: sub.id, event, ...extra }, attemptsMade, opts: { attempts: 3 } } as unknown as Job;
      return processor(job).then(
        () => reports.at(-1)!,
        () => reports.at(-1)!,
      );
    };

    const delivered = await run(up, 0);
    assert.equal(delivered.outcome, 'delivered');
    assert.ok(delivered.latencySeconds! >= 42 && delivered.latencySeconds! < 44, `latency ${delivered.latencySeconds}`);
    assert.deepEqual(await run(up, 0, { redelivery: true }), { project: 'eta', outcome: 'delivered' }, 'a redelivery of an old event: no latency');
    assert.deepEqual(await run(down, 0), { project: 'eta', outcome: 'retrying', reason: 'http_5xx' });
    assert.deepEqual(await run(down, 2), { project: 'eta', outcome: 'failed', reason: 'http_5xx' }, 'the last attempt is given up');
    assert.deepEqual(await run(gone, 1), { project: 'eta', outcome: 'retrying', reason: 'http_4xx' });
    assert.deepEqual(await run(closed, 0), { project: 'eta', outcome: 'retrying', reason: 'network' });
    allow.set('eta', []);
    assert.deepEqual(await run(up, 0), { project: 'eta', outcome: 'failed', reason: 'refused' }, 'a refused target is not retried');
    await subs.update('eta', up.id, { disabled: true });
    assert.deepEqual(await run(up, 0), { project: 'eta', outcome: 'skipped' });
    const bad = { data: { project: 'eta', subscriptionId: 'nope' }, attemptsMade: 0, opts: { attempts: 3 } } as unknown as Job;
    await assert.rejects(processor(bad), { name: 'UnrecoverableError' });
    assert.deepEqual(reports.at(-1), { project: '', outcome: 'failed', reason: 'farm' });
  });

  it('tells a receiver that did not answer in time from one that could not be reached', () => {
    assert.equal(failureReason({ error: noAnswerMessage(10_000) }), 'timeout');
    assert.equal(failureReason({ error: 'connect ETIMEDOUT 203.0.113.7:443' }), 'timeout');
    assert.equal(failureReason({ error: 'connect ECONNREFUSED 127.0.0.1:9' }), 'network');
    assert.equal(failureReason({ error: 'getaddrinfo ENOTFOUND hooks.example' }), 'network');
    assert.equal(failureReason({ status: 302, error: 'HTTP 302' }), 'http_other', 'redirects are not followed');
  });
});
