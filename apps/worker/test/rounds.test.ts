/**
 * Rounds racing each other: a user re-renders a frame (a new round) while something of the
 * previous round is still running — a job's follow-up that reconciles its frame, a finalize retried
 * late. Each must leave the new round alone. The races are played by a store that performs the
 * re-render between two reads of the code under test (real redis-server, the analytic pack).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rerenderPatch, StateConflictError, type ShotStore } from '@celfarm/jobs';
import { createMetrics } from '@celfarm/metrics';
import type { FarmEvents } from '../src/farm-worker.ts';
import { FrameFate } from '../src/frame-fate.ts';
import { sketchPngs, stageShot, startTestFarm, type TestFarm } from './fixtures.ts';

/** The store, but the first call of `method` first re-renders frame `frame` of the shot into round 1. */
function racing(store: ShotStore, method: 'frame' | 'frames', frame: number): ShotStore {
  let done = false;
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== method || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
      return async (id: string, ...rest: unknown[]) => {
        if (!done) {
          done = true;
          await target.update(id, { state: 'running', round: 1 }, { from: ['failed', 'completed'], round: 0 });
          const cur = (await target.frame(id, frame))!;
          await target.setFrame(id, frame, rerenderPatch(cur, 1, 99, null), [cur.state]);
        }
        return (value as (...a: unknown[]) => unknown).call(target, id, ...rest);
      };
    },
  });
}

describe('rounds racing a re-render', () => {
  let f: TestFarm;
  const published: { type: string; round: number }[] = [];
  before(async () => {
    const events: FarmEvents = {
      publish: async (type, ref) => {
        published.push({ type, round: ref.round ?? 0 });
      },
    };
    f = await startTestFarm(`rounds${process.pid}`, { events });
  });
  after(async () => {
    await f?.stop();
  });

  it("a follow-up of a round-0 job does not fail a frame re-rendered into round 1 meanwhile", async () => {
    const { shot } = await stageShot(f, { settings: { mode: 'vanilla', steps: 2 }, frames: await sketchPngs(2) });
    await f.store.setFrame(shot.id, 2, { state: 'active', worker: 'w-dead' });
    await f.store.setFrame(shot.id, 2, { state: 'failed', error: { code: 'INTERNAL', message: 'boom' } });
    await f.store.update(shot.id, { state: 'failed' });
    // The round-0 job failed for good; round 1's job waits.
    const queues = { frameJob: async (_s: string, _f: number, round = 0) => (round === 0 ? { state: 'failed' as const, failedReason: 'boom', attemptsMade: 2 } : { state: 'waiting' as const }) };
    const fate = new FrameFate({ store: racing(f.store, 'frame', 2), queues, metrics: createMetrics('worker') });
    const fix = await fate.reconcile(shot.id, 2);
    assert.equal(fix, null, 'judged against its own round, the waiting frame needs no fix');
    const after = (await f.store.frame(shot.id, 2))!;
    assert.deepEqual([after.state, after.seed, after.take], ['waiting', 99, 1]);
  });

  it('a finalize of round 0 retried after a re-render started round 1 leaves round 1 alone', async () => {
    const { shot } = await stageShot(f, { settings: { mode: 'vanilla', steps: 2 }, frames: await sketchPngs(2) });
    for (const n of [1, 2]) {
      await f.store.setFrame(shot.id, n, { state: 'active', worker: 'w1' });
      await f.store.setFrame(shot.id, n, { state: 'completed', output: `out/${n}.png` });
    }
    // Its first attempt recorded the outcome, then failed to write shot.json; the user re-renders.
    await f.store.update(shot.id, { state: 'completed' });
    const before = published.length;
    const late = f.freshWorker({ store: racing(f.store, 'frames', 2) });
    assert.equal(await late.finalizeShot({ shotId: shot.id, project: shot.project, round: 0 }), 'running');
    const now = (await f.store.get(shot.id))!;
    assert.deepEqual([now.state, now.round], ['running', 1], 'round 1 still runs');
    assert.equal((await f.store.frame(shot.id, 2))!.state, 'waiting');
    assert.deepEqual(published.slice(before).filter((e) => e.type.startsWith('shot.')), [], 'no final event for a round that has not ended');
  });

  it('refuses a shot update for a round the shot has left', async () => {
    const { shot } = await stageShot(f, { settings: { mode: 'vanilla', steps: 2 }, frames: await sketchPngs(1) });
    await f.store.update(shot.id, { round: 1 });
    await assert.rejects(f.store.update(shot.id, { state: 'completed' }, { round: 0 }), (e: unknown) => e instanceof StateConflictError && /round 1, not 0/.test(e.message));
    assert.equal((await f.store.update(shot.id, { state: 'completed' }, { round: 1 }))?.state, 'completed');
  });
});
