/**
 * Progress forwarding of a running frame, on an injected clock: at most one write per 100 ms,
 * the last sampler step always written; a cancelled shot aborts the frame's signal; and a
 * finished frame leaves nothing behind on a long-lived outside signal (the worker's leak).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { resolve } from 'node:path';
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

  it('leaves no listener on a long-lived outside signal once frames end, and still forwards its abort', async () => {
    const parent = new AbortController();
    for (let i = 0; i < 50; i++) {
      const watch = new FrameWatch({ clock: () => new Date(), isCancelled: async () => false, write: async () => undefined, signal: parent.signal });
      await watch.stop();
    }
    assert.equal(getEventListeners(parent.signal, 'abort').length, 0, 'every frame took its listener back');
    const running = new FrameWatch({ clock: () => new Date(), isCancelled: async () => false, write: async () => undefined, signal: parent.signal });
    parent.abort(new Error('worker closing'));
    assert.equal(running.signal.aborted, true);
    assert.equal((running.signal.reason as Error).message, 'worker closing');
    await running.stop();
  });

  it('keeps the heap flat over 2,000 frames whose signal holds a listener, as the host leaves one', () => {
    // A child process with --expose-gc, so the heap is measured after full collections. With
    // AbortSignal.any() each frame kept its 64 kB alive (~67 kB per frame measured).
    const script = resolve(import.meta.dirname, 'frame-watch-soak.ts');
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', script, '2000'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const { frames, bytesPerFrame } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { frames: number; bytesPerFrame: number };
    assert.equal(frames, 2000);
    assert.ok(bytesPerFrame < 2048, `heap grew ${bytesPerFrame} bytes per frame`);
  });
});
