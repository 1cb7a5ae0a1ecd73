import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveQaThresholds } from '../src/qa-thresholds.ts';
import type { FrameQa, FrameRecord } from '../src/records.ts';
import { cancelledPatch, chainSource, currentTake, rerenderPatch, withoutFlicker } from '../src/review.ts';

const qa: FrameQa = {
  scores: { palette: 3, flickerMean: 4, flickerShare: 0.2, lineFidelity: 0.5 },
  flickerMeasuredShare: 0.9,
  thresholds: { palette: 6, flickerMean: 2.5, flickerShare: 0.05, lineFidelity: 0.8 },
  flagged: ['flickerMean', 'flickerShare', 'lineFidelity'],
};

describe('review of frames', () => {
  it('drops only the flicker of a frame whose previous frame is rendered again', () => {
    assert.deepEqual(withoutFlicker(qa), {
      scores: { palette: 3, lineFidelity: 0.5 },
      thresholds: { palette: 6, lineFidelity: 0.8 },
      flagged: ['lineFidelity'],
    });
    assert.equal(withoutFlicker(undefined), undefined);
    assert.equal(withoutFlicker({ scores: { flickerMean: 1, flickerShare: 0 }, thresholds: {}, flagged: [] }), undefined, 'nothing left');
  });

  it('keeps the current take as lineage and hands the frame back with the new seed', () => {
    const f: FrameRecord = {
      frame: 3, state: 'completed', attempts: 1, seed: 5, output: 'o/3.png', seconds: 1.5, qa,
      review: { state: 'approved', at: '2026-12-01T00:00:00.000Z', by: 'key_1' },
    };
    const take = currentTake(f, { output: 'o/takes/3.r0.png', preview: 'o/takes/p/3.r0.webp' }, '2026-12-01T01:00:00.000Z');
    assert.deepEqual(take, {
      round: 0, seed: 5, output: 'o/takes/3.r0.png', preview: 'o/takes/p/3.r0.webp', qa, review: f.review, seconds: 1.5, replacedAt: '2026-12-01T01:00:00.000Z',
    });
    const patch = rerenderPatch({ ...f, takes: [{ ...take, round: 7 }] }, 2, 77, take);
    assert.deepEqual([patch.state, patch.seed, patch.take, patch.takes?.map((t) => t.round)], ['waiting', 77, 2, [7, 0]]);
    for (const k of ['qa', 'review', 'output', 'seconds', 'error', 'worker'] as const) assert.ok(k in patch && patch[k] === undefined, `${k} cleared`);
    // A failed frame has no take to keep.
    assert.equal('takes' in rerenderPatch({ ...f, state: 'failed', output: undefined }, 1, 9, null), false);
  });

  it('gives a frame cancelled before its new take rendered its earlier take back; any other is just cancelled', () => {
    const f: FrameRecord = { frame: 3, state: 'completed', attempts: 1, seed: 5, output: 'o/3.png', seconds: 1.5, qa, take: 2 };
    const take = currentTake(f, { output: 'o/takes/3.r2.png' }, '2026-12-01T01:00:00.000Z');
    const older = { ...take, round: 0, seed: 1, output: 'o/takes/3.r0.png' };
    const handed = { ...f, ...rerenderPatch({ ...f, takes: [older] }, 4, 77, take), state: 'active' as const, worker: 'w1' };
    const back = cancelledPatch(handed);
    assert.deepEqual(
      [back.state, back.seed, back.take, back.output, back.qa, back.seconds, back.takes?.map((t) => t.round), back.worker],
      ['completed', 5, 2, 'o/takes/3.r2.png', qa, 1.5, [0], undefined],
    );
    assert.equal(cancelledPatch({ frame: 1, state: 'waiting', attempts: 0, seed: 3 }).state, 'cancelled', 'a first take');
    assert.equal(cancelledPatch({ ...f, state: 'waiting', take: 2, takes: [{ ...take, round: 2 }] }).state, 'cancelled', 'its take is not an earlier one');
  });

  it('chains links of frames to the last frame of the link before', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((f) => chainSource(f, 3)), [null, null, null, 3, 3, 3, 6]);
    assert.deepEqual([1, 2, 3].map((f) => chainSource(f, 1)), [null, 1, 2], 'links of one: every frame from the one before');
  });

  it('resolves thresholds: later layers over earlier ones, unset ones fall through', () => {
    const d = { palette: 6, flickerMean: 2.5, flickerShare: 0.05, lineFidelity: 0.8 };
    assert.deepEqual(resolveQaThresholds(d, { palette: 8 }, undefined, { palette: 9, lineFidelity: 0.5 }, { flickerMean: undefined }), {
      palette: 9, flickerMean: 2.5, flickerShare: 0.05, lineFidelity: 0.5,
    });
    assert.deepEqual(d, { palette: 6, flickerMean: 2.5, flickerShare: 0.05, lineFidelity: 0.8 }, 'defaults untouched');
  });
});
