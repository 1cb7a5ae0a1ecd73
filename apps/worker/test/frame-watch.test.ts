/**
 * Progress forwarding of a running frame, on an injected clock: at most one write per 100 ms,
 * the last sampler step always written; and a cancelled shot aborts the frame's signal.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Progress } from '@celfarm/pipeline';
import { FrameWatch } from '../src/frame-watch.ts';

describe('FrameWatch', () => {
  it('writes at most 10 progress reports per second and always the last step', async () => {
    let now = 0;
    const written: Progress[] = [];
    const watch = new FrameWatch({
      clock: () => new Date(now),
      isCancelled: async () => false,
      write: async (p) => void written.push(p),
      cancelCheckMs: 60_000,
    });
    // 50 steps, 30 ms apart: 1.5 s of sampling.
    for (let step = 1; step <= 50; step++) {
      watch.onProgress({ stage: 'sample', step, steps: 50 });
      now += 30;
    }
    await watch.stop();
    assert.deepEqual(
      written.map((p) => p.step),
      [1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45, 49, 50],
    );
    assert.equal(watch.last?.step, 50);
  });

  it('keeps going when a progress write fails', async () => {
    let now = 0;
    let calls = 0;
    const watch = new FrameWatch({
      clock: () => new Date(now),
      isCancelled: async () => false,
      write: async () => {
        calls++;
        throw new Error('redis down');
      },
      cancelCheckMs: 60_000,
    });
    watch.onProgress({ stage: 'sample', step: 1, steps: 2 });
    now += 500;
    watch.onProgress({ stage: 'sample', step: 2, steps: 2 });
    await watch.stop();
    assert.equal(calls, 2);
  });

  it('aborts its signal once the shot is seen cancelled, and only then', async () => {
    let cancelled = false;
    const outside = new AbortController();
    const watch = new FrameWatch({
      clock: () => new Date(),
      isCancelled: async () => cancelled,
      write: async () => undefined,
      cancelCheckMs: 5,
      signal: outside.signal,
    });
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(watch.signal.aborted, false);
    cancelled = true;
    // The watch's own timer is unref'd; this loop keeps the test's event loop alive meanwhile.
    for (let i = 0; i < 200 && !watch.signal.aborted; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(watch.signal.aborted, true);
    assert.equal(watch.shotCancelled, true);
    await watch.stop();
  });

  it('passes an outside abort through without calling it a shot cancellation', async () => {
    const outside = new AbortController();
    const watch = new FrameWatch({ clock: () => new Date(), isCancelled: async () => false, write: async () => undefined, signal: outside.signal });
    outside.abort();
    assert.equal(watch.signal.aborted, true);
    assert.equal(watch.shotCancelled, false);
    await watch.stop();
  });
});
