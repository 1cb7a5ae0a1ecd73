/**
 * Shot QA as the shot page shows it: scores read with their units, judged against their
 * thresholds in the direction that is worse, and the flicker sparkline's geometry.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FrameView } from '../src/api.ts';
import { queryOf } from '../src/frames.ts';
import { formatScore, judge, nearestPoint, reviewStatus, scoreRows, sparkline, stepPoint, thresholdText, type FrameQa } from '../src/qa.ts';

const THRESHOLDS = { palette: 6, flickerMean: 2.5, flickerShare: 0.05, lineFidelity: 0.8 };

const qa = (scores: Partial<FrameQa['scores']>, flagged: FrameQa['flagged'] = []): FrameQa => ({
  scores: { palette: 3, flickerMean: 1, flickerShare: 0.01, lineFidelity: 0.9, ...scores },
  flickerMeasuredShare: 0.6,
  thresholds: THRESHOLDS,
  flagged,
});

const frame = (n: number, extra: Partial<FrameView> = {}): FrameView => ({
  frame: n,
  fileName: `${n}.png`,
  state: 'completed',
  attempts: 1,
  seed: 7,
  input: `in/${n}.png`,
  needsReview: false,
  ...extra,
});

describe('dashboard: shot QA scores', () => {
  it('reads colour distances in ΔE00 and shares in per cent; unscored and unmeasurable differ', () => {
    assert.equal(formatScore('palette', 3.214), '3.21 ΔE00');
    assert.equal(formatScore('flickerMean', 12), '12.00 ΔE00');
    assert.equal(formatScore('flickerShare', 0.05), '5 %');
    assert.equal(formatScore('lineFidelity', 0.1234), '12.3 %');
    assert.equal(formatScore('lineFidelity', 1), '100 %');
    assert.equal(formatScore('flickerMean', undefined), '—', 'not scored yet');
    assert.equal(formatScore('flickerMean', null), 'n/a', 'the first frame has no flicker');
  });

  it('judges each score in its worse direction: line fidelity below, the others above, at the threshold within', () => {
    assert.equal(judge('palette', 6.01, 6), 'past');
    assert.equal(judge('palette', 6, 6), 'within');
    assert.equal(judge('flickerShare', 0.2, 0.05), 'past');
    assert.equal(judge('lineFidelity', 0.12, 0.8), 'past');
    assert.equal(judge('lineFidelity', 0.95, 0.8), 'within');
    assert.equal(judge('flickerMean', null, 2.5), 'unknown');
    assert.equal(judge('flickerMean', 3, undefined), 'unknown');
    assert.equal(thresholdText('lineFidelity', 0.8), 'below 80 % is flagged');
    assert.equal(thresholdText('flickerMean', 2.5), 'above 2.50 ΔE00 is flagged');
  });

  it('marks the scores the farm flagged, with the thresholds the frame was judged against, else the shot’s', () => {
    const rows = scoreRows(qa({ lineFidelity: 0.12 }, ['lineFidelity']));
    assert.deepEqual(
      rows.map((r) => [r.score, r.flagged, r.threshold]),
      [['palette', false, 6], ['flickerMean', false, 2.5], ['flickerShare', false, 0.05], ['lineFidelity', true, 0.8]],
    );
    const own = { ...qa({}), thresholds: {} };
    assert.equal(scoreRows(own, { qaThresholds: { palette: 4 } })[0]!.threshold, 4, 'the shot’s threshold fills in');
  });

  it('tells a frame waiting for a person from an approved one', () => {
    assert.equal(reviewStatus({ needsReview: true, qa: qa({}, ['palette']) }), 'needs-review');
    assert.equal(reviewStatus({ needsReview: false, qa: qa({}, ['palette']), review: { state: 'approved', at: '2026-01-01T00:00:00Z' } }), 'approved');
    assert.equal(reviewStatus({ needsReview: false, qa: qa({}) }), 'clear');
    assert.equal(reviewStatus({ needsReview: false }), 'unscored');
  });
});

describe('dashboard: flicker sparkline', () => {
  const box = { width: 100, height: 50, pad: 5 };

  it('places frames by number, breaks the line where a frame has no flicker, and marks flagged ones', () => {
    const frames = [
      frame(1, { qa: qa({ flickerMean: null }) }),
      frame(2, { qa: qa({ flickerMean: 1 }) }),
      frame(3, { qa: qa({ flickerMean: 4 }, ['flickerMean']) }),
      frame(5, { qa: qa({ flickerMean: 2 }) }),
      frame(4), // not scored
    ];
    const line = sparkline(frames, 5, box, 2.5);
    assert.deepEqual(line.points.map((p) => [p.frame, p.x, p.flagged]), [[2, 27.5, false], [3, 50, true], [5, 95, false]]);
    assert.equal(line.top, 4, 'the largest value is above 1.25 × the threshold');
    assert.equal(line.points[1]!.y, 5, 'the largest value at the top');
    assert.equal(line.thresholdY, 5 + 40 - (2.5 / 4) * 40);
    assert.equal(line.path, 'M27.5 35 L50 5 M95 25', 'frame 4 has no value: the line breaks');
  });

  it('keeps the threshold line inside the box when every frame is calm, and centres a one-frame shot', () => {
    const calm = sparkline([frame(2, { qa: qa({ flickerMean: 0.5 }) })], 3, box, 2.5);
    assert.equal(calm.top, 3.125);
    assert.ok(calm.thresholdY! > box.pad && calm.thresholdY! < box.height - box.pad);
    assert.equal(sparkline([frame(1, { qa: qa({ flickerMean: 1 }) })], 1, box).points[0]!.x, 50);
    assert.deepEqual(sparkline([frame(1)], 1, box, 2.5).points, []);
  });

  it('picks the frame nearest a click, and steps frame to frame from the keyboard', () => {
    const { points } = sparkline([2, 3, 5].map((n) => frame(n, { qa: qa({ flickerMean: n }) })), 5, box);
    assert.equal(nearestPoint(points, 60)?.frame, 3);
    assert.equal(nearestPoint(points, 90)?.frame, 5);
    assert.equal(nearestPoint([], 10), undefined);
    assert.equal(stepPoint(points, undefined, 1)?.frame, 2);
    assert.equal(stepPoint(points, undefined, -1)?.frame, 5);
    assert.equal(stepPoint(points, 3, 1)?.frame, 5);
    assert.equal(stepPoint(points, 4, -1)?.frame, 3, 'from a frame without a point');
    assert.equal(stepPoint(points, 5, 1)?.frame, 5, 'stays at the end');
  });
});

describe('dashboard: review filters', () => {
  it('asks the farm for the frames each filter shows', () => {
    assert.deepEqual(queryOf('needs-review'), { review: 'needed' });
    assert.deepEqual(queryOf('flagged'), { flagged: true });
    assert.deepEqual(queryOf('failed'), { state: ['failed'] });
    assert.deepEqual(queryOf('all'), {});
  });
});
