/**
 * Webhooks end to end: real redis-server, s3rver, the API (which delivers) and two worker
 * processes, with a local HTTP receiver on 127.0.0.1 allow-listed for the projects that use it.
 * Asserts what a studio's endpoint sees: every event of a shot, signed with its secret, once;
 * retries with growing delays; private targets refused; one frame.completed per frame even when
 * a worker is killed mid-frame; redelivery and ping.
 */
import assert from 'node:assert/strict';
import { until as waitUntil } from '@celfarm/services';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { KeyStore } from '@celfarm/tenancy';
import { verify } from '@celfarm/webhooks';
import type { DeliveryAttempt, DeliveryList, WebhookEvent } from '@celfarm/contract';
import { createApiKey, shotForm, shotFrames, startFarm, unfinishedFrames, type Farm, type ShotView } from '../harness.ts';

const SIZE = 128;

const until = <T>(what: string, probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 60_000) =>
  waitUntil(what, probe, { timeoutMs, intervalMs: 50 });

interface Hit {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/** node:http on 127.0.0.1: records every POST; `script` sets the next statuses of a path. */
class Receiver {
  readonly hits: Hit[] = [];
  readonly script = new Map<string, number[]>();
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        this.hits.push({ path: req.url ?? '', headers: req.headers, body, at: Date.now() });
        res.statusCode = this.script.get(req.url ?? '')?.shift() ?? 200;
        res.end('ok');
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  at(path: string): Hit[] {
    return this.hits.filter((h) => h.path === path);
  }

  events(path: string): WebhookEvent[] {
    return this.at(path).map((h) => JSON.parse(h.body) as WebhookEvent);
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}


async function pngs(frames: number, size = SIZE) {
  const sketches = await Promise.all(Array.from({ length: frames }, (_, i) => encodePng(sketchFrame(size, size, i, frames).image)));
  return { sketches, reference: await encodePng(halfImage(size, size, COLOURS.red, COLOURS.grey)) };
}

describe('webhooks end to end', () => {
  let farm: Farm;
  let redis: Redis;
  let keys: KeyStore;
  const receiver = new Receiver();

  /** An admin key of a new project; `allow` allow-lists the receiver's 127.0.0.1 for it. */
  async function project(name: string, allow: boolean): Promise<string> {
    const token = await createApiKey(farm, name);
    if (allow) await keys.allowWebhookHost(name, '127.0.0.1');
    return token;
  }

  async function call<T = unknown>(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const r = await fetch(`${farm.apiUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  async function submit(token: string, project: string, settings: Record<string, unknown>, frames: number, size = SIZE): Promise<string> {
    const { sketches, reference } = await pngs(frames, size);
    const r = await fetch(`${farm.apiUrl}/v1/shots`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: shotForm({ project, settings }, { reference, frames: sketches }),
    });
    const body = (await r.json()) as ShotView;
    assert.equal(r.status, 201, JSON.stringify(body));
    return body.id;
  }

  async function shotWhen(token: string, id: string, done: (s: ShotView) => boolean, timeoutMs = 60_000): Promise<ShotView> {
    return until(`shot ${id}`, async () => {
      const s = (await call<ShotView>(token, 'GET', `/v1/shots/${id}`)).body;
      return done(s) ? s : undefined;
    }, timeoutMs);
  }

  async function subscribe(token: string, path: string, events: string[]): Promise<{ id: string; secret: string }> {
    const r = await call<{ id: string; secret: string }>(token, 'POST', '/v1/webhooks', { url: `${receiver.url}${path}`, events, description: path });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body;
  }

  const finished = (s: ShotView) => s.state === 'completed' || s.state === 'failed';

  before(async () => {
    await receiver.start();
    farm = await startFarm({
      workers: 2,
      env: { WEBHOOK_BACKOFF_MS: '200', WEBHOOK_ATTEMPTS: '5', WEBHOOK_TIMEOUT_MS: '5000', RATE_LIMIT_PER_SECOND: '1000', RATE_LIMIT_BURST: '1000' },
    });
    redis = new Redis(farm.redis.url);
    keys = new KeyStore(redis, farm.env.REDIS_PREFIX);
  });
  after(async () => {
    redis?.disconnect();
    await farm?.stop();
    await receiver.stop();
  });

  // Shared by the redelivery test.
  let run: { token: string; sub: { id: string; secret: string }; created: WebhookEvent } | undefined;

  it("delivers a shot's events, each signed with the subscription's secret and each once", async () => {
    const token = await project('wh-run', true);
    const sub = await subscribe(token, '/run', ['*']);
    assert.match(sub.secret, /^whsec_[A-Za-z0-9+/]{32}$/);
    const listed = await call<{ webhooks: Record<string, unknown>[] }>(token, 'GET', '/v1/webhooks');
    assert.deepEqual(listed.body.webhooks.map((w) => [w.id, w.url, w.events, 'secret' in w]), [[sub.id, `${receiver.url}/run`, ['*'], false]]);

    const shotId = await submit(token, 'wh-run', { mode: 'vanilla', steps: 4, seed: 11, width: SIZE, height: SIZE }, 2);
    const shot = await shotWhen(token, shotId, finished);
    assert.equal(shot.state, 'completed', JSON.stringify(shot.error));
    // Deliveries run several at a time: wait for all seven, then for anything doubled.
    const expected = ['frame.completed#1', 'frame.completed#2', 'frame.flagged#1', 'frame.flagged#2', 'shot.completed', 'shot.created', 'shot.started'];
    const named = () => receiver.events('/run').map((e) => `${e.type}${e.frame ? `#${e.frame}` : ''}`);
    await until('the shot’s seven events at the receiver', () => (expected.every((n) => named().includes(n)) ? true : undefined), 30_000);
    await new Promise((r) => setTimeout(r, 500)); // anything doubled would arrive now

    const hits = receiver.at('/run');
    const events = receiver.events('/run');
    // frame.flagged too: shot QA finds the analytic pack's 3-px lines lost (it inks whole latent cells).
    assert.deepEqual(named().sort(), expected);
    assert.equal(new Set(events.map((e) => e.id)).size, events.length, 'each event id arrives once');
    for (const [i, h] of hits.entries()) {
      const { id } = verify(sub.secret, h.headers, h.body);
      assert.equal(id, events[i]!.id, 'webhook-id is the event id');
      assert.equal(h.headers['content-type'], 'application/json');
      assert.equal(events[i]!.project, 'wh-run');
      assert.equal(events[i]!.shotId, shotId);
    }
    const frames = events.filter((e) => e.type === 'frame.completed').sort((a, b) => a.frame! - b.frame!);
    assert.deepEqual(frames.map((e) => e.data.seed), [11, 12]);
    assert.ok(frames.every((e) => typeof e.data.output === 'string' && (e.data.output as string).endsWith(`${String(e.frame).padStart(5, '0')}.png`)));
    assert.ok(frames.every((e) => typeof e.data.seconds === 'number' && (e.data.seconds as number) > 0));
    const done = events.find((e) => e.type === 'shot.completed')!;
    assert.deepEqual(done.data.counts, { waiting: 0, active: 0, completed: 2, failed: 0, cancelled: 0 });

    // Each log entry is written once its receiver has answered.
    const log = await until('a log entry per event', async () => {
      const l = await call<DeliveryList>(token, 'GET', `/v1/webhooks/${sub.id}/deliveries?limit=10`);
      return l.status === 200 && l.body.deliveries.length >= events.length ? l : undefined;
    }, 30_000);
    assert.equal(log.body.deliveries.length, events.length);
    assert.ok(log.body.deliveries.every((d) => d.delivered && d.status === 200 && d.attempt === 1 && d.durationMs >= 0));
    run = { token, sub, created: events.find((e) => e.type === 'shot.created')! };
  });

  it('retries a failing receiver with growing delays until it answers 2xx', async () => {
    const token = await project('wh-retry', true);
    receiver.script.set('/flaky', [500, 500]);
    const sub = await subscribe(token, '/flaky', ['shot.created']);
    await submit(token, 'wh-retry', { steps: 2, width: SIZE, height: SIZE }, 1);
    const hits = await until('three attempts', () => (receiver.at('/flaky').length >= 3 ? receiver.at('/flaky') : undefined), 30_000);
    const [first, second] = [hits[1]!.at - hits[0]!.at, hits[2]!.at - hits[1]!.at];
    assert.ok(first >= 180, `first retry after ${first} ms (backoff 200 ms)`);
    // Growing: each wait is at least its backoff (200 ms, then 400 ms); a late poll can only add.
    assert.ok(second >= 380, `second retry after ${second} ms, first after ${first} ms`);
    assert.equal(new Set(hits.map((h) => h.headers['webhook-id'])).size, 1, 'one webhook-id across the retries');
    for (const h of hits) verify(sub.secret, h.headers, h.body);
    const log = await until('three log entries', async () => {
      const l = (await call<DeliveryList>(token, 'GET', `/v1/webhooks/${sub.id}/deliveries`)).body.deliveries;
      return l.length >= 3 ? l : undefined;
    });
    assert.deepEqual(
      [...log].reverse().map((d) => [d.attempt, d.status, d.delivered]),
      [[1, 500, false], [2, 500, false], [3, 200, true]],
    );
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(receiver.at('/flaky').length, 3, 'nothing after the 2xx');
  });

  it('refuses private targets, bad events and callers without admin, and keeps projects apart', async () => {
    const token = await project('wh-private', false);
    const refused: [string, RegExp][] = [
      ['http://10.0.0.5/hook', /10\.0\.0\.5 is private/],
      [`${receiver.url}/private`, /127\.0\.0\.1 is loopback/],
      [`http://localhost:${new URL(receiver.url).port}/hook`, /localhost → (127\.0\.0\.1|::1) is loopback/],
      ['http://169.254.169.254/latest/meta-data/', /link-local/],
      ['http://[::1]:8080/', /loopback/],
      ['ftp://example.com/hook', /only http and https/],
    ];
    for (const [url, why] of refused) {
      const r = await call<{ error: { code: string; field?: string; message: string } }>(token, 'POST', '/v1/webhooks', { url, events: ['*'] });
      assert.equal(r.status, 400, `${url}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.field, 'url', url);
      assert.match(r.body.error.message, why, url);
      if (!url.startsWith('ftp')) assert.match(r.body.error.message, /private or loopback address not allowed; an admin can allow-list it/);
    }
    const badEvent = await call<{ error: { field?: string } }>(token, 'POST', '/v1/webhooks', { url: 'https://example.com/x', events: ['shot.exploded'] });
    assert.equal(badEvent.status, 400);
    assert.equal(badEvent.body.error.field, 'events[0]');
    const extra = await call<{ error: { field?: string } }>(token, 'POST', '/v1/webhooks', { url: 'https://example.com/x', events: ['*'], secret: 'mine' });
    assert.equal(extra.status, 400);
    assert.equal(extra.body.error.field, 'secret');
    assert.deepEqual((await call<{ webhooks: unknown[] }>(token, 'GET', '/v1/webhooks')).body.webhooks, [], 'nothing was stored');

    const reader = await createApiKey(farm, 'wh-private', ['read', 'submit'], 'no-admin');
    assert.equal((await call(reader, 'GET', '/v1/webhooks')).status, 403);
    assert.equal((await call(reader, 'POST', '/v1/webhooks', { url: 'https://example.com/x', events: ['*'] })).status, 403);

    // Another project's subscription does not exist for this key.
    assert.ok(run, 'the first test created a subscription');
    for (const [method, path] of [
      ['GET', `/v1/webhooks/${run.sub.id}`],
      ['DELETE', `/v1/webhooks/${run.sub.id}`],
      ['GET', `/v1/webhooks/${run.sub.id}/deliveries`],
      ['POST', `/v1/webhooks/${run.sub.id}/ping`],
      ['POST', `/v1/webhooks/${run.sub.id}/deliveries/${run.created.id}/redeliver`],
    ] as const) {
      assert.equal((await call(token, method, path)).status, 404, `${method} ${path}`);
    }
    assert.equal((await call(run.token, 'GET', `/v1/webhooks/${run.sub.id}`)).status, 200, 'still there for its owner');

    const doc = (await (await fetch(`${farm.apiUrl}/docs/json`)).json()) as { paths: Record<string, unknown> };
    for (const p of ['/v1/webhooks', '/v1/webhooks/{id}', '/v1/webhooks/{id}/deliveries', '/v1/webhooks/{id}/deliveries/{eventId}/redeliver', '/v1/webhooks/{id}/ping']) {
      assert.ok(doc.paths[p], `OpenAPI documents ${p}`);
    }
  });

  it('yields exactly one frame.completed per frame when a worker is killed mid-frame', async () => {
    const token = await project('wh-kill', true);
    const sub = await subscribe(token, '/kill', ['frame.completed', 'shot.completed']);
    const shotId = await submit(token, 'wh-kill', { mode: 'vanilla', steps: 100, seed: 9, width: 1024, height: 1024, batchSize: 2 }, 4, 512);
    const busy = await shotWhen(token, shotId, (s) => s.active.some((f) => (f.step ?? 0) > 2 && !!f.worker));
    const victimFrame = busy.active.find((f) => (f.step ?? 0) > 2 && !!f.worker)!;
    const victim = farm.workers.find((w) => w.name === victimFrame.worker)!;
    assert.ok(victim, `worker ${victimFrame.worker} is one of ours`);
    await victim.kill('SIGKILL');
    const done = await shotWhen(token, shotId, finished, 150_000);
    assert.equal(done.state, 'completed', await unfinishedFrames(farm.apiUrl, shotId, token));
    const frames = await shotFrames(farm.apiUrl, shotId, token);
    assert.ok(frames.find((f) => f.frame === victimFrame.frame)!.attempts >= 2, 'the killed frame ran again');
    await until('shot.completed at the receiver', () => (receiver.events('/kill').some((e) => e.type === 'shot.completed') ? true : undefined), 30_000);
    await new Promise((r) => setTimeout(r, 1000));

    const completions = receiver.events('/kill').filter((e) => e.type === 'frame.completed');
    assert.deepEqual(completions.map((e) => e.frame).sort(), [1, 2, 3, 4], 'one frame.completed per frame');
    assert.equal(new Set(completions.map((e) => e.id)).size, 4);
    for (const h of receiver.at('/kill')) verify(sub.secret, h.headers, h.body);
    // Two workers again.
    farm.workers.splice(farm.workers.indexOf(victim), 1);
    await farm.startWorker(`${victim.name}-b`);
  });

  it('redelivers a past event and pings on demand', async () => {
    assert.ok(run, 'the first test created a subscription');
    const { token, sub, created } = run;

    const ping = await call<DeliveryAttempt>(token, 'POST', `/v1/webhooks/${sub.id}/ping`);
    assert.equal(ping.status, 200, JSON.stringify(ping.body));
    assert.equal(ping.body.type, 'webhook.ping');
    assert.equal(ping.body.delivered, true);
    assert.equal(ping.body.status, 200);
    const pinged = receiver.at('/run').find((h) => JSON.parse(h.body).type === 'webhook.ping');
    assert.ok(pinged, 'the receiver got the ping');
    assert.equal(verify(sub.secret, pinged.headers, pinged.body).id, ping.body.eventId);
    assert.deepEqual((JSON.parse(pinged.body) as WebhookEvent).data, { subscriptionId: sub.id, url: `${receiver.url}/run` });

    const before = receiver.at('/run').filter((h) => h.headers['webhook-id'] === created.id).length;
    const re = await call<{ jobId: string; eventId: string }>(token, 'POST', `/v1/webhooks/${sub.id}/deliveries/${created.id}/redeliver`);
    assert.equal(re.status, 202, JSON.stringify(re.body));
    assert.equal(re.body.eventId, created.id);
    const again = await until('the redelivery', () => {
      const hs = receiver.at('/run').filter((h) => h.headers['webhook-id'] === created.id);
      return hs.length > before ? hs.at(-1) : undefined;
    }, 15_000);
    verify(sub.secret, again.headers, again.body);
    assert.deepEqual(JSON.parse(again.body), created, 'the same event body');

    const unknown = await call<{ error: { code: string } }>(token, 'POST', `/v1/webhooks/${sub.id}/deliveries/evt_000000000000000000000000/redeliver`);
    assert.equal(unknown.status, 404);
    const log = (await call<DeliveryList>(token, 'GET', `/v1/webhooks/${sub.id}/deliveries?limit=2`)).body.deliveries;
    assert.equal(log.length, 2);
    assert.equal(log[0]!.eventId, created.id, 'newest first: the redelivery');

    // A disabled subscription receives nothing, not even a redelivery, until it is enabled again.
    const off = await call<{ disabled: boolean }>(token, 'PATCH', `/v1/webhooks/${sub.id}`, { disabled: true });
    assert.equal(off.status, 200, JSON.stringify(off.body));
    assert.equal(off.body.disabled, true);
    const hitsBefore = receiver.at('/run').length;
    assert.equal((await call(token, 'POST', `/v1/webhooks/${sub.id}/deliveries/${created.id}/redeliver`)).status, 202);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(receiver.at('/run').length, hitsBefore, 'nothing delivered while disabled');
    assert.equal((await call(token, 'PATCH', `/v1/webhooks/${sub.id}`, {})).status, 400);
    assert.equal((await call<{ disabled: boolean }>(token, 'PATCH', `/v1/webhooks/${sub.id}`, { disabled: false })).body.disabled, false);

    assert.equal((await call(token, 'DELETE', `/v1/webhooks/${sub.id}`)).status, 204);
    assert.equal((await call(token, 'GET', `/v1/webhooks/${sub.id}`)).status, 404);
    assert.equal((await call(token, 'POST', `/v1/webhooks/${sub.id}/ping`)).status, 404);
  });
});
