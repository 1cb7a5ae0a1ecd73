/**
 * ShotStore against a real redis-server: idempotent create that announces the shot, atomic
 * transitions of shots and frames (the state machines enforced at the write), frames, workers.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startRedis, type RunningRedis } from '@celfarm/services';
import { FrameTransitionError, ShotStore, StateConflictError } from '../src/store.ts';
import { EventBus } from '../src/events.ts';
import { etaOf, tallyOf } from '../src/tally.ts';
import type { FrameRecord, ShotRecord } from '../src/records.ts';
import { frameSeed, jobIds, newShotId, parseJobData, JobPayloadError } from '../src/catalogue.ts';
import { resolveSettings } from '@celfarm/pipeline/settings';

/** Settings as the API stores them: resolved against a pack (vanilla needs none of its graphs). */
const RULES = { id: 'analytic', version: '1.0.0', size: { multiple: 64, min: 64, max: 1024, default: 128 }, defaults: {}, graphs: {} };
const { settings: SETTINGS } = resolveSettings({ mode: 'vanilla', seed: 7 }, RULES, { frameSize: { width: 128, height: 128 } });

function shot(id: string, over: Partial<ShotRecord> = {}): ShotRecord {
  const now = new Date().toISOString();
  return {
    id, project: 'demo', state: 'queued', createdAt: now, updatedAt: now, settings: SETTINGS, warnings: [], seed: 7, priority: 0,
    pack: { id: 'analytic', version: '1.0.0' }, frameCount: 2, inputs: { frames: ['a', 'b'], reference: 'r' },
    failedFrameShare: 0, awaitingUploads: false, round: 0, ...over,
  };
}
const frames = (n: number): FrameRecord[] =>
  Array.from({ length: n }, (_, i) => ({ frame: i + 1, state: 'waiting' as const, attempts: 0, seed: frameSeed(7, i + 1) }));

describe('ShotStore on redis-server', () => {
  let dir: string;
  let server: RunningRedis;
  let redis: Redis;
  let store: ShotStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-redis-'));
    server = await startRedis(dir);
    redis = new Redis(server.url);
    store = new ShotStore(redis, `t${process.pid}`);
  });
  after(async () => {
    redis.disconnect();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates once per idempotency key and returns the first shot afterwards', async () => {
    const a = await store.create(shot('sidem1', { idempotencyKey: 'k1' }), frames(2));
    const b = await store.create(shot('sidem2', { idempotencyKey: 'k1' }), frames(2));
    assert.deepEqual(a, { id: 'sidem1', created: true });
    assert.deepEqual(b, { id: 'sidem1', created: false });
    assert.equal(await store.get('sidem2'), null);
  });

  it('enforces the state machine and keeps concurrent frame writes', async () => {
    await store.create(shot('sstate1'), frames(3));
    await store.update('sstate1', { state: 'running' });
    await store.update('sstate1', { state: 'cancelled' });
    await assert.rejects(store.update('sstate1', { state: 'running' }), StateConflictError);
    await Promise.all([1, 2, 3].map((f) => store.setFrame('sstate1', f, (cur) => ({ attempts: cur.attempts + 1, state: 'active' }))));
    await Promise.all([1, 2, 3].map((f) => store.setFrame('sstate1', f, (cur) => ({ attempts: cur.attempts + 1 }))));
    const fr = await store.frames('sstate1');
    assert.deepEqual(fr.map((f) => f.attempts), [2, 2, 2]);
    assert.equal(await store.setFrame('sstate1', 1, { state: 'completed' }, ['waiting']), null, 'onlyIf guards');
    await store.setProgress('sstate1', 2, { stage: 'sample', step: 5, steps: 20 });
    assert.equal((await store.frame('sstate1', 2))!.state, 'active');
    assert.deepEqual((await store.frames('sstate1'))[1]!.step, 5);
  });

  it('refuses frame transitions the state machine does not allow, and writes nothing then', async () => {
    const s = new ShotStore(redis, `fsm${process.pid}`);
    await s.create(shot('sfsm1', { frameCount: 4 }), frames(4));
    const refused = async (frame: number, to: FrameRecord['state'], from: FrameRecord['state']) => {
      const before = await s.frame('sfsm1', frame);
      await assert.rejects(
        s.setFrame('sfsm1', frame, (cur) => ({ state: to, attempts: cur.attempts + 1, worker: 'w-late' })),
        (e: unknown) => e instanceof FrameTransitionError && e instanceof StateConflictError && e.from === from && e.to === to,
        `${from} → ${to}`,
      );
      assert.deepEqual(await s.frame('sfsm1', frame), before, `frame ${frame} unchanged`);
    };
    // Frame 1 completes; a late worker (its lock expired, or its job was delivered twice) cannot take it back.
    await s.setFrame('sfsm1', 1, { state: 'active', worker: 'w1', attempts: 1 });
    await s.setFrame('sfsm1', 1, { state: 'completed', output: 'out/1.png' });
    await refused(1, 'active', 'completed');
    await refused(1, 'failed', 'completed');
    assert.deepEqual(await s.activeFrames(), [], 'nor does it enter the active index');
    // A cancelled frame cannot go active; a frame never taken cannot complete.
    await s.setFrame('sfsm1', 2, { state: 'cancelled' });
    await refused(2, 'active', 'cancelled');
    await refused(3, 'completed', 'waiting');
    // Failed goes back to waiting only (a retry round), not straight to active.
    await s.setFrame('sfsm1', 4, { state: 'active', worker: 'w1' });
    await s.setFrame('sfsm1', 4, { state: 'failed', error: { code: 'RUNTIME', message: 'boom' } });
    await refused(4, 'active', 'failed');
    assert.equal((await s.setFrame('sfsm1', 4, { state: 'waiting', error: undefined }, ['failed']))?.state, 'waiting');
    // Writes that keep the state are fine (a patch of other fields, a rerun rewriting its result).
    assert.equal((await s.setFrame('sfsm1', 1, { state: 'completed', seconds: 2 }))?.seconds, 2);
    assert.equal((await s.setFrame('sfsm1', 2, { sketchSha256: 'ab' }))?.state, 'cancelled');
    // Only a user's re-render with another seed (review.ts, through the API) hands a completed frame back.
    assert.equal((await s.setFrame('sfsm1', 1, { state: 'waiting', output: undefined }, ['completed']))?.state, 'waiting');
    // Handed back for take 1, it cannot complete from waiting as take 1 (no worker ran it) —
    // only return, unrendered, to its earlier take 0 (a cancelled re-render).
    await s.setFrame('sfsm1', 1, { take: 1 });
    await refused(1, 'completed', 'waiting');
    await assert.rejects(s.setFrame('sfsm1', 1, { state: 'completed', take: 2 }), FrameTransitionError);
    assert.equal((await s.setFrame('sfsm1', 1, { state: 'completed', take: 0 }))?.take, 0);
  });

  it('announces a new shot with shot.created in the same write, once, and not for an idempotent repeat', async () => {
    const prefix = `ann${process.pid}`;
    const s = new ShotStore(redis, prefix);
    const bus = new EventBus(redis, prefix);
    await s.create(shot('sann1', { project: 'announce', idempotencyKey: 'k-ann', priority: 40 }), frames(2));
    await s.create(shot('sann2', { project: 'announce', idempotencyKey: 'k-ann' }), frames(2));
    const events = await bus.recent('announce');
    assert.deepEqual(events.map((e) => [e.type, e.shotId]), [['shot.created', 'sann1']]);
    assert.deepEqual(events[0]!.data, { name: 'sann1', state: 'queued', frameCount: 2, priority: 40, awaitingUploads: false });
    assert.equal((await redis.xrange(bus.outboxKey, '-', '+')).filter(([, f]) => f[1]!.includes('"sann1"')).length, 1, 'on the outbox for webhooks');
    // Whoever publishes it again (an older worker filling the gap) adds nothing.
    assert.equal(await bus.publish('shot.created', { project: 'announce', shotId: 'sann1' }, {}), null);
    assert.equal((await bus.recent('announce')).length, 1);
  });

  it('finds the nearest frame a predicate takes, either way, across read chunks', async () => {
    const s = new ShotStore(redis, `near${process.pid}`);
    await s.create(shot('snear', { frameCount: 150 }), frames(150));
    for (const n of [3, 70, 140]) await s.setFrame('snear', n, { sketchSha256: 'marked' });
    const marked = (f: FrameRecord) => f.sketchSha256 === 'marked';
    const near = async (start: number, dir: 1 | -1) => (await s.nearestFrame('snear', start, dir, 150, marked))?.frame ?? null;
    assert.deepEqual(await Promise.all([near(150, -1), near(139, -1), near(69, -1), near(2, -1), near(0, -1)]), [140, 70, 3, null, null]);
    assert.deepEqual(await Promise.all([near(1, 1), near(4, 1), near(71, 1), near(141, 1), near(151, 1)]), [3, 70, 140, null, null]);
  });

  it('indexes the frames recorded active, guards writes with a predicate, and forgets deleted shots', async () => {
    const s = new ShotStore(redis, `idx${process.pid}`);
    await s.create(shot('sindex1', { frameCount: 3 }), frames(3));
    await s.create(shot('sindex2', { frameCount: 1 }), frames(1));
    assert.deepEqual(await s.activeFrames(), []);
    await s.setFrame('sindex1', 1, { state: 'active', worker: 'w1' });
    await s.setFrame('sindex1', 3, { state: 'active', worker: 'w1' });
    await s.setFrame('sindex2', 1, { state: 'active', worker: 'w2' });
    const sorted = async () => (await s.activeFrames()).map((a) => `${a.shotId}/${a.frame}`).sort();
    assert.deepEqual(await sorted(), ['sindex1/1', 'sindex1/3', 'sindex2/1']);
    await s.setFrame('sindex1', 1, { state: 'completed' });
    assert.deepEqual(await sorted(), ['sindex1/3', 'sindex2/1'], 'leaving active leaves the index');

    // The predicate sees the current record: a write judged on an older one is refused.
    const judged = (await s.frame('sindex1', 3))!;
    await s.setFrame('sindex1', 3, (cur) => ({ attempts: cur.attempts + 1, worker: 'w9' }));
    const same = (cur: FrameRecord) => JSON.stringify(cur) === JSON.stringify(judged);
    assert.equal(await s.setFrame('sindex1', 3, { state: 'waiting' }, same), null);
    assert.equal((await s.frame('sindex1', 3))!.worker, 'w9');

    await s.delete('sindex1');
    assert.deepEqual(await sorted(), ['sindex2/1'], 'a deleted shot leaves the index');
    // An entry whose record is gone (written by an older version, say) can be dropped.
    await redis.sadd(`idx${process.pid}:active-frames`, 'sgone/4');
    await s.forgetActive('sgone', 4);
    assert.deepEqual(await sorted(), ['sindex2/1']);
  });

  it('lists newest first with a state filter and a cursor', async () => {
    const s = new ShotStore(redis, `list${process.pid}`);
    for (let i = 0; i < 5; i++) {
      await s.create(shot(`slist${i}`, { createdAt: new Date(1_700_000_000_000 + i * 1000).toISOString(), state: i % 2 ? 'failed' : 'queued' }), []);
    }
    const page1 = await s.list({ limit: 2 });
    assert.deepEqual(page1.shots.map((x) => x.id), ['slist4', 'slist3']);
    const page2 = await s.list({ limit: 2, before: page1.next! });
    assert.deepEqual(page2.shots.map((x) => x.id), ['slist2', 'slist1']);
    assert.deepEqual((await s.list({ state: 'failed' })).shots.map((x) => x.id), ['slist3', 'slist1']);
    // Shots created in the same millisecond are neither skipped nor repeated across pages.
    const same = new ShotStore(redis, `same${process.pid}`);
    const at = new Date(1_700_000_000_000).toISOString();
    for (const id of ['ssamea', 'ssameb', 'ssamec']) await same.create(shot(id, { createdAt: at }), []);
    const seen: string[] = [];
    let before: string | undefined;
    for (;;) {
      const page = await same.list({ limit: 1, before });
      seen.push(...page.shots.map((x) => x.id));
      if (!page.next) break;
      before = page.next;
    }
    assert.deepEqual(seen, ['ssamec', 'ssameb', 'ssamea']);
  });

  it('searches names, studio ids and ids, looking at a bounded number of shots per call', async () => {
    const s = new ShotStore(redis, `search${process.pid}`);
    const named: [string, Partial<ShotRecord>][] = [
      ['sfind0', { name: 'Forest chase' }],
      ['sfind1', { name: 'sh010', externalIds: { show: 'MOON', sequence: 'sq020', shot: 'sh010' } }],
      ['sfind2', { name: 'Rooftop' }],
      ['sfind3', { name: 'forest intro', project: 'elsewhere' }],
      ['sfind4', { name: 'Night market', externalIds: { show: 'moon' } }],
    ];
    for (const [i, [id, over]] of named.entries()) await s.create(shot(id, { createdAt: new Date(1_700_000_000_000 + i * 1000).toISOString(), ...over }), []);
    const ids = async (opts: Parameters<ShotStore['list']>[0]) => (await s.list(opts)).shots.map((x) => x.id);
    assert.deepEqual(await ids({ project: 'demo', q: 'FOREST' }), ['sfind0'], 'case-insensitive, in the project only');
    assert.deepEqual(await ids({ q: 'forest' }), ['sfind3', 'sfind0']);
    assert.deepEqual(await ids({ project: 'demo', q: 'moon' }), ['sfind4', 'sfind1'], 'studio ids');
    assert.deepEqual(await ids({ project: 'demo', q: 'SQ02' }), ['sfind1']);
    assert.deepEqual(await ids({ project: 'demo', q: 'sfind2' }), ['sfind2'], 'ids');
    assert.deepEqual(await ids({ project: 'demo', q: 'nothing like it' }), []);
    // A search stops after `scan` shots; `next` resumes it where it stopped, and nothing is missed.
    const found: string[] = [];
    let before: string | undefined;
    let calls = 0;
    for (;;) {
      const page = await s.list({ project: 'demo', q: 'o', scan: 2, before });
      calls++;
      found.push(...page.shots.map((x) => x.id));
      if (!page.next) break;
      before = page.next;
    }
    assert.deepEqual(found, ['sfind4', 'sfind2', 'sfind1', 'sfind0']);
    assert.ok(calls >= 2, `${calls} calls`);
    await s.delete('sfind2');
    assert.deepEqual(await ids({ project: 'demo', q: 'rooftop' }), [], 'deleted shots are not found');
  });

  it('expires workers that stop sending heartbeats', async () => {
    const now = Date.now();
    const w = { host: 'h', pid: 1, provider: 'cpu', pack: 'p@1', startedAt: new Date(now).toISOString(), currentJob: null, framesDone: 0 };
    await store.heartbeat({ ...w, id: 'w-old', lastSeen: new Date(now - 60_000).toISOString() });
    await store.heartbeat({ ...w, id: 'w-new', lastSeen: new Date(now).toISOString() });
    assert.deepEqual((await store.workers(15_000)).map((x) => x.id), ['w-new']);
  });
});

describe('job catalogue', () => {
  it('has deterministic ids without colons and validates payloads', () => {
    const id = newShotId(1_700_000_000_000, () => 0.5);
    assert.match(id, /^[a-z0-9]+$/);
    assert.equal(jobIds.frame(id, 3), `${id}-3`);
    assert.equal(jobIds.frame(id, 3, 2), `${id}-3-r2`, 'retry rounds carry their number');
    assert.equal(jobIds.finalize(id, 1), `${id}-finalize-r1`);
    assert.deepEqual(parseJobData('finalize', { shotId: id, project: 'demo', round: 1 }), { shotId: id, project: 'demo', round: 1 });
    assert.ok(!jobIds.prepare(id).includes(':'), 'BullMQ refuses ":" in ids');
    assert.deepEqual(parseJobData('frame', { shotId: id, project: 'demo', frame: 2 }), { shotId: id, project: 'demo', frame: 2 });
    assert.throws(() => parseJobData('frame', { shotId: id, project: 'demo', frame: 0 }), JobPayloadError);
    assert.throws(() => parseJobData('frame', { shotId: id, project: 'Demo!', frame: 1 }), /project/);
  });

  it('estimates the remaining time from measured frame times', () => {
    const f = (state: FrameRecord['state'], seconds?: number): FrameRecord => ({ frame: 1, state, attempts: 0, seed: 0, seconds });
    assert.equal(etaOf(tallyOf([f('waiting'), f('waiting')]), [], 1), null);
    assert.equal(etaOf(tallyOf([f('completed', 2), f('completed', 4), f('waiting'), f('waiting')]), [], 2), 3);
  });
});
