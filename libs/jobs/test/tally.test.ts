/**
 * The shot tally: what replacing one frame record with another changes, and the store keeping a
 * shot's tally and state letters in step with its records through concurrent frame writes on a
 * real redis-server — the digest read from them equals the one computed from every record.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startRedis, type RunningRedis } from '@celfarm/services';
import { resolveSettings } from '@celfarm/pipeline/settings';
import { ShotStore } from '../src/store.ts';
import { canFrameTransition, FRAME_STATES, type FrameRecord, type FrameState, type ShotRecord } from '../src/records.ts';
import { TALLY_FIELDS, countFrame, digestOf, emptyTally, etaOf, framesIn, tallyDelta, tallyOf, type ShotDigest } from '../src/tally.ts';

const RULES = { id: 'analytic', version: '1.0.0', size: { multiple: 64, min: 64, max: 1024, default: 128 }, defaults: {}, graphs: {} };
const { settings: SETTINGS } = resolveSettings({ mode: 'vanilla', seed: 7 }, RULES, { frameSize: { width: 128, height: 128 } });

function shot(id: string, frameCount: number): ShotRecord {
  const now = new Date().toISOString();
  return {
    id, project: 'demo', state: 'running', createdAt: now, updatedAt: now, settings: SETTINGS, warnings: [], seed: 7, priority: 0,
    pack: { id: 'analytic', version: '1.0.0' }, frameCount, inputs: { frames: Array.from({ length: frameCount }, (_, i) => `f${i}`), reference: 'r' },
    failedFrameShare: 0, awaitingUploads: false, round: 0,
  };
}
const waiting = (n: number): FrameRecord[] => Array.from({ length: n }, (_, i) => ({ frame: i + 1, state: 'waiting' as const, attempts: 0, seed: i + 1 }));

const flaggedQa = { scores: { lineFidelity: 0.2 }, thresholds: { lineFidelity: 0.5 }, flagged: ['lineFidelity' as const] };
const cleanQa = { scores: { lineFidelity: 0.9 }, thresholds: { lineFidelity: 0.5 }, flagged: [] };

/** A deterministic stream of numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** A patch a farm could write to a frame in `state`: a transition it allows, or other fields. */
function randomPatch(cur: FrameRecord, r: () => number): Partial<FrameRecord> {
  const allowed = FRAME_STATES.filter((s) => canFrameTransition(cur.state, s));
  const to = allowed[Math.floor(r() * allowed.length)]!;
  switch (to) {
    case 'completed':
      return { state: to, output: `o${cur.frame}`, seconds: Math.round(r() * 5000) / 1000, qa: r() < 0.5 ? flaggedQa : cleanQa, error: undefined };
    case 'failed':
      return { state: to, error: { code: r() < 0.5 ? 'INVALID_IMAGE' : 'INTERNAL', message: 'x', ...(r() < 0.5 ? { permanent: true } : {}) } };
    case 'waiting':
      return { state: to, qa: undefined, review: undefined, output: undefined, seconds: undefined, error: undefined };
    case 'active':
      return { state: to, worker: 'w1', attempts: cur.attempts + 1 };
    default:
      // cancelled, or the same state: an approval of a completed frame, a QA score written later.
      if (cur.state === 'completed') return r() < 0.5 ? { review: { state: 'approved', at: 'now' } } : { qa: r() < 0.5 ? flaggedQa : undefined };
      return { state: to };
  }
}

describe('shot tally', () => {
  it('moves by the difference of the two records, and adds up to the tally of the records', () => {
    const before: FrameRecord = { frame: 1, state: 'active', attempts: 1, seed: 1 };
    const after: FrameRecord = { ...before, state: 'completed', seconds: 1.5, qa: flaggedQa };
    assert.deepEqual(tallyDelta(before, after), [['active', -1], ['completed', 1], ['flagged', 1], ['needsReview', 1], ['timed', 1], ['secondsMs', 1500]]);
    const approved: FrameRecord = { ...after, review: { state: 'approved', at: 'now' } };
    assert.deepEqual(tallyDelta(after, approved), [['needsReview', -1]], 'approval: no longer waits for a person, still flagged');
    const r = rng(1);
    const frames = waiting(50).map((f) => ({ ...f, ...randomPatch(f, r) }) as FrameRecord);
    const t = tallyOf(frames);
    for (const f of frames) countFrame(t, f, -1);
    assert.deepEqual(t, emptyTally());
  });

  it('estimates the time left from the tally as from the records', () => {
    const f = (state: FrameState, seconds?: number, step?: number): FrameRecord => ({ frame: 1, state, attempts: 0, seed: 1, ...(seconds !== undefined ? { seconds } : {}), ...(step !== undefined ? { step, steps: 10 } : {}) });
    const frames = [f('completed', 2), f('completed', 4), f('active', undefined, 5), f('waiting')];
    assert.equal(etaOf(tallyOf(frames), [frames[2]!], 1), (2 - 0.5) * 3);
    // (2 remaining − half of one sampled) × 3 s mean ÷ 2 workers.
    assert.equal(etaOf(tallyOf(frames), [frames[2]!], 2), (1.5 * 3) / 2);
    assert.equal(etaOf(tallyOf([f('waiting')]), [], 1), null, 'nothing timed yet');
  });

  it('picks frames by their state letters, after a cursor', () => {
    assert.deepEqual(framesIn('wacfxc', new Set(['completed'])), [3, 6]);
    assert.deepEqual(framesIn('wacfxc', null, 4), [5, 6]);
    assert.deepEqual(framesIn('wacfxc', new Set(['waiting', 'active']), 1), [2]);
  });

  describe('kept by the store', () => {
    let dir: string;
    let server: RunningRedis;
    let redis: Redis;
    let store: ShotStore;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'celfarm-tally-'));
      server = await startRedis(dir);
      redis = new Redis(server.url);
      store = new ShotStore(redis, `tally${process.pid}`);
    });
    after(async () => {
      redis.disconnect();
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    });

    const expected = async (id: string, frameCount: number): Promise<ShotDigest> => digestOf(await store.frames(id), frameCount);

    it('in step with the records through concurrent writes of every kind', async () => {
      const N = 40;
      await store.create(shot('tl1', N), waiting(N));
      assert.deepEqual(await store.digest('tl1', N), await expected('tl1', N));
      assert.equal(await store.frameStates('tl1', N), 'w'.repeat(N));
      const r = rng(7);
      const reached = new Set<string>();
      for (let round = 0; round < 25; round++) {
        // Several writers at once, some on the same frame (compare-and-set retries them).
        await Promise.all(
          Array.from({ length: 12 }, async () => {
            // The patch is computed from the record as it is at each try, so it is always allowed.
            await store.setFrame('tl1', 1 + Math.floor(r() * N), (cur) => randomPatch(cur, r));
          }),
        );
        await store.setProgress('tl1', 1 + Math.floor(r() * N), { stage: 'sample', step: 3, steps: 10 });
        const got = await store.digest('tl1', N);
        const want = await expected('tl1', N);
        assert.deepEqual(got, want, `round ${round}`);
        assert.equal(await store.frameStates('tl1', N), want.states);
        for (const f of TALLY_FIELDS) reached.add(got.tally[f] > 0 ? f : '');
      }
      // The writes went through every state and every counted kind of record.
      assert.deepEqual(TALLY_FIELDS.filter((f) => !reached.has(f)), []);
    });

    it('reads a shot from before the tally whole, and leaves it so', async () => {
      await store.create(shot('tl2', 3), waiting(3));
      await redis.del(`tally${process.pid}:shot:tl2:tally`, `tally${process.pid}:shot:tl2:states`);
      await store.setFrame('tl2', 2, { state: 'active' });
      await store.setProgress('tl2', 2, { stage: 'sample', step: 4, steps: 8 });
      const d = await store.digest('tl2', 3);
      assert.deepEqual(d, await expected('tl2', 3));
      assert.equal(d.states, 'waw');
      assert.equal(d.active[0]!.step, 4);
      assert.equal(await redis.exists(`tally${process.pid}:shot:tl2:tally`, `tally${process.pid}:shot:tl2:states`), 0, 'no partial tally appears');
    });

    it('goes with the shot when it is deleted', async () => {
      await store.create(shot('tl3', 2), waiting(2));
      await store.delete('tl3');
      assert.equal(await redis.exists(`tally${process.pid}:shot:tl3:tally`, `tally${process.pid}:shot:tl3:states`), 0);
    });
  });
});
