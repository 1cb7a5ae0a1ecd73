/**
 * How the shot page folds live snapshots into the frames it loaded from the frame pages, and what
 * it then fetches: only frames that gained a colour URL or an error, never the whole shot.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FrameView, LiveShot } from '../src/api.ts';
import { dropUncompleted, keepUrls, lacksDetails, mergeColour, mergeFrames, mergeView, newlyCompleted, replaceFrames } from '../src/merge.ts';

const frame = (n: number, state: FrameView['state'], extra: Partial<FrameView> = {}): FrameView => ({
  frame: n,
  state,
  attempts: 1,
  seed: n,
  input: `in/${n}.png`,
  fileName: `${n}.png`,
  needsReview: false,
  ...extra,
});

const live = (frames: string, active: LiveShot['active'] = []): LiveShot => ({
  id: 's1',
  state: 'running',
  updatedAt: '2026-01-01T00:00:01.000Z',
  progress: 0.5,
  etaSeconds: 3,
  frameCount: frames.length,
  counts: { waiting: 0, active: active.length, completed: 0, failed: 0, cancelled: 0 },
  frames,
  active,
});

describe('dashboard: live snapshots and frame pages', () => {
  it('moves loaded frames to the states and sampler steps of the snapshot; a retried frame drops its old error', () => {
    const loaded = [frame(1, 'waiting'), frame(2, 'failed', { error: { code: 'WORKER_LOST', message: 'lost' } }), frame(3, 'completed', { outputUrl: '/o/3' })];
    const merged = mergeFrames(loaded, live('awc', [{ frame: 1, stage: 'sample', step: 3, steps: 8, worker: 'w1' }]));
    assert.deepEqual(
      merged.map((f) => [f.frame, f.state, f.step, f.worker, f.error?.code]),
      [[1, 'active', 3, 'w1', undefined], [2, 'waiting', undefined, undefined, undefined], [3, 'completed', undefined, undefined, undefined]],
    );
    assert.equal(merged[2], loaded[2], 'an unchanged frame is the same object');
    assert.equal(mergeFrames(loaded, live('wfc')), loaded, 'nothing changed: the same array');
  });

  it('asks only for what a snapshot cannot carry: new colour frames, and errors of failed ones', () => {
    const colour = [frame(1, 'completed', { outputUrl: '/o/1' })];
    assert.deepEqual(newlyCompleted(live('ccwc'), colour), [2, 4]);
    const strip = mergeFrames([frame(5, 'active'), frame(6, 'active')], live('wwwwfc'));
    assert.deepEqual(strip.filter(lacksDetails).map((f) => f.frame), [5, 6], 'a failed frame without its error, a completed one without its URL');
  });

  it('takes fetched frames into the strip and the flipbook, keeping the URLs of unchanged objects', () => {
    const strip = [frame(1, 'completed', { output: 'o/1.png', outputUrl: '/o/1?sig=old', previewUrl: '/p/1?sig=old' }), frame(2, 'active')];
    const fetched = [frame(1, 'completed', { output: 'o/1.png', outputUrl: '/o/1?sig=new', previewUrl: '/p/1?sig=new' }), frame(2, 'completed', { output: 'o/2.png', outputUrl: '/o/2' })];
    const next = replaceFrames(strip, fetched);
    assert.deepEqual(next.map((f) => [f.frame, f.state, f.outputUrl, f.previewUrl]), [[1, 'completed', '/o/1?sig=old', '/p/1?sig=old'], [2, 'completed', '/o/2', undefined]]);
    const colour = mergeColour([strip[0]!], [frame(3, 'failed'), ...fetched]);
    assert.deepEqual(colour.map((f) => [f.frame, f.outputUrl]), [[1, '/o/1?sig=old'], [2, '/o/2']], 'completed frames with a URL, in frame order');
  });

  it('a frame rendered again leaves its old take behind: no old colour, scores or approval, out of the flipbook until it completes', () => {
    const qa = { scores: { lineFidelity: 0.1 }, flickerMeasuredShare: null, thresholds: { lineFidelity: 0.8 }, flagged: ['lineFidelity' as const] };
    const approved = frame(2, 'completed', { output: 'o/2.png', outputUrl: '/o/2', qa, review: { state: 'approved', at: '2026-01-01T00:00:00Z' } });
    const [, waiting] = mergeFrames([frame(1, 'completed'), approved], live('cw'));
    assert.deepEqual([waiting!.state, waiting!.outputUrl, waiting!.qa, waiting!.review, waiting!.needsReview], ['waiting', undefined, undefined, undefined, false]);
    const colour = [frame(1, 'completed', { outputUrl: '/o/1' }), approved];
    assert.deepEqual(dropUncompleted(colour, live('cw')).map((f) => f.frame), [1]);
    assert.equal(dropUncompleted(colour, live('cc')), colour, 'nothing left: the same array');
    assert.deepEqual(newlyCompleted(live('cc'), [colour[0]!]), [2], 'completed again: fetched again');
  });

  it('keeps a signed URL only for the same take: a new seed under the same output key is another image', () => {
    const old = frame(1, 'completed', { output: 'o/1.png', outputUrl: '/o/1?sig=old', seed: 5 });
    assert.equal(keepUrls(old, { ...old, outputUrl: '/o/1?sig=new' }).outputUrl, '/o/1?sig=old');
    const rerendered = { ...old, seed: 6, outputUrl: '/o/1?sig=new', takes: [{ round: 0, seed: 5, output: 'o/takes/1.png', replacedAt: '' }] };
    assert.equal(keepUrls(old, rerendered).outputUrl, '/o/1?sig=new');
  });

  it('refetches the light shot view when the snapshot changes its outcome or its failures', () => {
    const view = {
      id: 's1', project: 'demo', name: 's1', state: 'running', createdAt: '', updatedAt: '', settings: {}, warnings: [], seed: 1, priority: 50,
      pack: { id: 'analytic', version: '1' }, frameCount: 3, counts: { waiting: 3, active: 0, completed: 0, failed: 0, cancelled: 0 },
      retryableFrames: 0, progress: 0, etaSeconds: null, failedFrameShare: 0, awaitingUploads: false, round: 0, inputs: { reference: 'r.png' }, active: [],
    } as unknown as Parameters<typeof mergeView>[0];
    const steps = mergeView(view, live('aww', [{ frame: 1, step: 2, steps: 8 }]));
    assert.deepEqual([steps.stale, steps.view.active], [false, [{ frame: 1, step: 2, steps: 8 }]]);
    const failed = mergeView(view, { ...live('fww'), counts: { waiting: 2, active: 0, completed: 0, failed: 1, cancelled: 0 } });
    assert.equal(failed.stale, true, 'a new failure: the retryable count comes with the view');
  });
});
