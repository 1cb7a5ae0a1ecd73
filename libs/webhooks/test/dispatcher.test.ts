/**
 * The outbox dispatcher against a real redis-server, the delivery worker and a local HTTP
 * receiver: events published while no dispatcher runs go out once one starts; an entry a dead
 * consumer read but never acked (before or after its fan-out) is claimed and delivered exactly
 * once; a restarted consumer takes up its own pending entries; a failed fan-out stays pending
 * and goes out later; an event matching two subscriptions gives one job each; reading goes on
 * across a Redis restart.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { EventBus, outboxKey, type FarmEvent } from '@celfarm/jobs';
import { startRedis, type RunningRedis, until as waitUntil } from '@celfarm/services';
import { createDeliveryProcessor, startDeliveryWorker, WebhookDeliverer } from '../src/delivery.ts';
import { DeliveryLog } from '../src/delivery-log.ts';
import { DISPATCH_GROUP, WebhookDispatcher, type DispatcherOptions } from '../src/dispatcher.ts';
import { EventArchive, type WebhookEvent } from '../src/events.ts';
import { deliveryJobId, WebhookFanout } from '../src/fanout.ts';
import { verify } from '../src/signing.ts';
import { SubscriptionStore, type Subscription } from '../src/subscriptions.ts';

const until = <T>(what: string, probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 10_000) =>
  waitUntil(what, probe, { timeoutMs });

interface Hit {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('webhook outbox dispatcher on redis-server', () => {
  let dir: string;
  let server: RunningRedis;
  let redis: Redis;
  let bull: Redis;
  let receiver: Server;
  let base: string;
  const hits: Hit[] = [];
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-dispatch-'));
    server = await startRedis(dir);
    redis = new Redis(server.url);
    bull = new Redis(server.url, { maxRetriesPerRequest: null });
    receiver = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        hits.push({ path: req.url ?? '', headers: req.headers, body });
        res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await new Promise<void>((r) => receiver.close(() => r()));
    redis.disconnect();
    bull.disconnect();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** The event ids a path received, one entry per delivery. */
  const received = (path: string) => hits.filter((h) => h.path === path).map((h) => JSON.parse(h.body).id as string);

  /** A farm of its own (Redis prefix): bus, subscriptions, fan-out queue and delivery worker. */
  function rig(name: string) {
    const prefix = `dt${process.pid}${name}`;
    const subs = new SubscriptionStore(redis, prefix);
    const fanout = new WebhookFanout(subs, new EventArchive(redis, prefix), { connection: bull, prefix, attempts: 2, backoffMs: 100 });
    const deliverer = new WebhookDeliverer({ log: new DeliveryLog(redis, prefix), allowHosts: async () => ['127.0.0.1'], timeoutMs: 2000 });
    const worker = startDeliveryWorker(createDeliveryProcessor(deliverer, subs), { connection: bull, prefix, concurrency: 4 });
    const dispatchers: WebhookDispatcher[] = [];
    const errors: Error[] = [];
    cleanups.push(async () => {
      await Promise.all(dispatchers.map((d) => d.stop()));
      await worker.close();
      await fanout.close();
    });
    return {
      prefix,
      key: outboxKey(prefix),
      bus: new EventBus(redis, prefix),
      subs,
      fanout,
      errors,
      subscribe: (project: string, path: string, events: Subscription['events'] = ['*']) => subs.create(project, { url: `${base}${path}`, events }),
      dispatcher(opts: Partial<DispatcherOptions> = {}, via: Pick<WebhookFanout, 'fanout'> = fanout): WebhookDispatcher {
        const d = new WebhookDispatcher(via, { redis, prefix, onError: (e) => errors.push(e), ...opts });
        dispatchers.push(d);
        return d;
      },
      /** Entries of the group not acked yet. */
      pending: async () => Number(((await redis.xpending(outboxKey(prefix), DISPATCH_GROUP)) as [number])[0]),
      /** Ids of the queue's jobs for `event`. */
      jobs: async (event: FarmEvent) =>
        (await fanout.queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'failed']))
          .map((j) => j.id!)
          .filter((id) => id.startsWith(`${event.id}-`))
          .sort(),
    };
  }

  it('writes each new event once to the outbox, and fans out what was published while no dispatcher ran', async () => {
    const r = rig('late');
    const sub = await r.subscribe('late', '/late');
    const a = (await r.bus.publish('shot.created', { project: 'late', shotId: 's1' }, { frameCount: 1 }))!;
    assert.equal(await r.bus.publish('shot.created', { project: 'late', shotId: 's1' }, { frameCount: 1 }), null);
    const b = (await r.bus.publish('frame.completed', { project: 'late', shotId: 's1', frame: 1 }, { output: 'k' }))!;
    const outbox = await redis.xrange(r.key, '-', '+');
    assert.deepEqual(outbox.map(([, f]) => JSON.parse(f[1]!)), [a, b], 'every new event, once, as published');
    assert.equal(await redis.exists(`${r.prefix}:events:outbox`), 0, 'no key a project named "outbox" would share');
    await sleep(200);
    assert.deepEqual(received('/late'), [], 'nothing is fanned out without a dispatcher');

    // The very first dispatcher: the group did not exist when the events were published.
    const first = r.dispatcher();
    first.start();
    await until('both events', () => (received('/late').length >= 2 ? true : undefined));
    const live = (await r.bus.publish('shot.completed', { project: 'late', shotId: 's1' }, {}))!;
    await until('the live event', () => (received('/late').includes(live.id) ? true : undefined));
    const t0 = performance.now();
    await first.stop();
    // Well under the 5 s blocking read it cuts short, with room for a loaded machine.
    assert.ok(performance.now() - t0 < 3000, `stop cuts the blocking read short (${Math.round(performance.now() - t0)} ms)`);

    // Published while the group exists but no dispatcher runs.
    const idle = (await r.bus.publish('shot.failed', { project: 'late', shotId: 's2' }, {}))!;
    await sleep(200);
    assert.ok(!received('/late').includes(idle.id));
    r.dispatcher().start();
    await until('the event published while stopped', () => (received('/late').includes(idle.id) ? true : undefined));
    await sleep(300);
    assert.deepEqual(received('/late').sort(), [a.id, b.id, live.id, idle.id].sort(), 'each event once');
    for (const h of hits.filter((x) => x.path === '/late')) verify(sub.secret, h.headers, h.body);
    assert.equal(await r.pending(), 0, 'all acked');
    assert.deepEqual(r.errors, []);
  });

  it('delivers exactly once what a dead consumer read and never acked, fanned out or not', async () => {
    const r = rig('dead');
    const sub = await r.subscribe('dead', '/dead');
    const setup = r.dispatcher();
    await setup.ensureGroup();
    await setup.ensureGroup(); // BUSYGROUP is fine
    await setup.stop();
    const unread = (await r.bus.publish('frame.completed', { project: 'dead', shotId: 's1', frame: 1 }, {}))!;
    const fannedOut = (await r.bus.publish('frame.completed', { project: 'dead', shotId: 's1', frame: 2 }, {}))!;
    // A dispatcher reads both, fans the second out, and dies before acking either. Idle time
    // counts from the read, so the claim comes at least claimIdleMs after t0.
    const t0 = Date.now();
    const read = await redis.xreadgroup('GROUP', DISPATCH_GROUP, 'dead-host-1', 'COUNT', 10, 'STREAMS', r.key, '>');
    assert.equal(read?.[0]?.[1].length, 2);
    await r.fanout.fanout(fannedOut);
    assert.equal(await r.pending(), 2);

    r.dispatcher({ consumer: 'alive-host-2', claimIdleMs: 400 }).start();
    await until('both deliveries', () => (received('/dead').length >= 2 ? true : undefined));
    assert.ok(Date.now() - t0 >= 300, 'claimed only once idle for claimIdleMs');
    await sleep(500);
    assert.deepEqual(received('/dead').sort(), [unread.id, fannedOut.id].sort(), 'exactly once each');
    assert.deepEqual(await r.jobs(unread), [deliveryJobId(unread.id, sub.id)]);
    assert.deepEqual(await r.jobs(fannedOut), [deliveryJobId(fannedOut.id, sub.id)]);
    assert.equal(await r.pending(), 0);
  });

  it('takes up its own pending entries at once when it restarts under the same name', async () => {
    const r = rig('own');
    await r.subscribe('own', '/own');
    const setup = r.dispatcher();
    await setup.ensureGroup();
    await setup.stop();
    const event = (await r.bus.publish('shot.started', { project: 'own', shotId: 's1' }, {}))!;
    await redis.xreadgroup('GROUP', DISPATCH_GROUP, 'api-1', 'COUNT', 10, 'STREAMS', r.key, '>');
    // Far from idle long enough to be claimed: only the consumer's own re-read can take it up.
    r.dispatcher({ consumer: 'api-1', claimIdleMs: 60_000 }).start();
    await until('the delivery', () => (received('/own').length ? true : undefined), 5000);
    await sleep(300);
    assert.deepEqual(received('/own'), [event.id]);
    assert.equal(await r.pending(), 0);
  });

  it('keeps an event whose fan-out failed pending and fans it out again', async () => {
    const r = rig('flaky');
    await r.subscribe('flaky', '/flaky');
    let failures = 1;
    const flaky = {
      fanout: (e: WebhookEvent) => (failures-- > 0 ? Promise.reject(new Error('Redis went away')) : r.fanout.fanout(e)),
    };
    r.dispatcher({ claimIdleMs: 200 }, flaky).start();
    const event = (await r.bus.publish('frame.failed', { project: 'flaky', shotId: 's1', frame: 2 }, { error: { code: 'RUNTIME' } }))!;
    await until('the recovered delivery', () => (received('/flaky').length ? true : undefined));
    await sleep(400);
    assert.deepEqual(received('/flaky'), [event.id], 'once');
    assert.equal(await r.pending(), 0);
    assert.equal(r.errors.length, 1);
    assert.match(r.errors[0]!.message, new RegExp(`fan-out of ${event.id} .* failed, kept pending: Redis went away`));
  });

  it('tries its own failed fan-out again soon (backing off), not only after the claim idle time', async () => {
    const r = rig('soon');
    await r.subscribe('soon', '/soon');
    let failures = 3;
    const flaky = {
      fanout: (e: WebhookEvent) => (failures-- > 0 ? Promise.reject(new Error('Redis went away')) : r.fanout.fanout(e)),
    };
    // Claims only after a minute: what goes out sooner went out by the consumer's own retry.
    r.dispatcher({ claimIdleMs: 60_000, retryFailedMs: 100 }, flaky).start();
    const t0 = Date.now();
    const event = (await r.bus.publish('shot.created', { project: 'soon', shotId: 's1' }, {}))!;
    await until('the retried delivery', () => (received('/soon').length ? true : undefined));
    const took = Date.now() - t0;
    // Retried after 100, 100 and 200 ms of back-off, then the fan-out that works.
    assert.ok(took >= 400 && took < 10_000, `delivered after ${took} ms`);
    await sleep(300);
    assert.deepEqual(received('/soon'), [event.id], 'once');
    assert.equal(await r.pending(), 0);
    assert.equal(r.errors.length, 3);
  });

  it('reads its own pending entries again when its connection comes back (a read whose reply was lost)', async () => {
    const r = rig('lost');
    await r.subscribe('lost', '/lost');
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let first = true;
    // The first fan-out waits: meanwhile the dispatcher reads nothing new.
    const slow = {
      fanout: async (e: WebhookEvent) => {
        if (first) {
          first = false;
          await held;
        }
        return r.fanout.fanout(e);
      },
    };
    // No claims and no timed recovery within the test: only the reconnection can bring E2 out.
    const d = r.dispatcher({ consumer: 'lost-1', claimIdleMs: 120_000 }, slow);
    d.start();
    const e1 = (await r.bus.publish('shot.created', { project: 'lost', shotId: 's1' }, {}))!;
    await until('the first fan-out to start', () => (!first ? true : undefined));
    const e2 = (await r.bus.publish('shot.started', { project: 'lost', shotId: 's1' }, {}))!;
    // E2 handed to this consumer by a read whose reply never arrived: pending, unseen.
    const raw = new Redis(server.url);
    try {
      await raw.xreadgroup('GROUP', DISPATCH_GROUP, 'lost-1', 'COUNT', 10, 'STREAMS', r.key, '>');
      assert.equal(await r.pending(), 2);
      // The connection drops (as when Redis restarts) and comes back.
      await raw.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    } finally {
      raw.disconnect();
    }
    release();
    await until('both deliveries', () => (received('/lost').length >= 2 ? true : undefined), 10_000);
    assert.deepEqual(received('/lost').sort(), [e1.id, e2.id].sort());
    await until('nothing pending', async () => ((await r.pending()) === 0 ? true : undefined));
  });

  it('gives an event matching two subscriptions one job each', async () => {
    const r = rig('two');
    const all = await r.subscribe('two', '/two-all');
    const frames = await r.subscribe('two', '/two-frames', ['frame.completed']);
    await r.subscribe('two', '/two-failed', ['shot.failed']);
    await r.subscribe('other', '/two-other');
    const dispatchers = [r.dispatcher({ consumer: 'a' }), r.dispatcher({ consumer: 'b' })];
    for (const d of dispatchers) d.start();
    const event = (await r.bus.publish('frame.completed', { project: 'two', shotId: 's1', frame: 1 }, { output: 'k' }))!;
    await until('both deliveries', () => (received('/two-all').length && received('/two-frames').length ? true : undefined));
    await sleep(300);
    assert.deepEqual(await r.jobs(event), [deliveryJobId(event.id, all.id), deliveryJobId(event.id, frames.id)].sort());
    assert.deepEqual(received('/two-all'), [event.id]);
    assert.deepEqual(received('/two-frames'), [event.id]);
    assert.deepEqual(received('/two-failed'), [], 'a subscription to other types gets nothing');
    assert.deepEqual(received('/two-other'), [], 'another project hears nothing');
    assert.equal(await r.pending(), 0);
  });
});

describe('webhook outbox dispatcher across a Redis restart', () => {
  it('goes on reading once Redis is back, with what was published meanwhile', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'celfarm-dispatch-restart-'));
    let server = await startRedis(dir);
    const redis = new Redis(server.url, { maxRetriesPerRequest: null });
    redis.on('error', () => undefined);
    const prefix = `rs${process.pid}`;
    const bus = new EventBus(redis, prefix);
    const seen: string[] = [];
    const errors: Error[] = [];
    const dispatcher = new WebhookDispatcher(
      { fanout: async (e) => (seen.push(e.id), []) },
      { redis, prefix, blockMs: 200, claimIdleMs: 500, onError: (e) => errors.push(e) },
    );
    try {
      dispatcher.start();
      const before = (await bus.publish('shot.created', { project: 'rs', shotId: 's1' }, {}))!;
      await until('the first event, acked', async () =>
        seen.includes(before.id) && Number(((await redis.xpending(outboxKey(prefix), DISPATCH_GROUP)) as [number])[0]) === 0 ? true : undefined,
      );
      await server.stop();
      await sleep(300);
      server = await startRedis(dir, server.port);
      const afterRestart = (await bus.publish('shot.started', { project: 'rs', shotId: 's1' }, {}))!;
      await until('the event published after the restart', () => (seen.includes(afterRestart.id) ? true : undefined), 15_000);
      assert.deepEqual(seen, [before.id, afterRestart.id]);
      assert.ok(errors.some((e) => /outbox connection/.test(e.message)), 'the outage was reported');
    } finally {
      await dispatcher.stop();
      redis.disconnect();
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
