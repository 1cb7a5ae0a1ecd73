/**
 * A frame record follows its job: what `frameFix` decides for every pair of record state and job
 * state — above all the cases that used to leave a record `active` on a dead worker for good.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frameFix, STALLED_OUT_REASON, WORKER_LOST, type FrameJobView } from '../src/fate.ts';
import type { FrameRecord } from '../src/records.ts';
import { cappedBackoff, CAPPED_BACKOFF } from '../src/queues.ts';

const record = (state: FrameRecord['state'], over: Partial<FrameRecord> = {}): FrameRecord => ({ frame: 4, state, attempts: 2, seed: 10, worker: 'w-dead', ...over });
const live = { cancelled: false };

describe('frameFix', () => {
  it('leaves finished records and records of active jobs alone', () => {
    for (const state of ['completed', 'failed', 'cancelled'] as const) {
      for (const job of ['waiting', 'active', 'failed', 'missing'] as const) assert.equal(frameFix(record(state), { state: job }, live), null, `${state}/${job}`);
    }
    assert.equal(frameFix(record('active'), { state: 'active' }, live), null, 'the holder owns the record');
    assert.equal(frameFix(record('waiting'), { state: 'active' }, live), null, 'a worker just took it');
  });

  it('puts an active record back to waiting when its job waits to run again (its worker was lost)', () => {
    for (const job of ['waiting', 'prioritized', 'delayed'] as const) assert.deepEqual(frameFix(record('active'), { state: job }, live), { state: 'waiting' });
    assert.equal(frameFix(record('waiting'), { state: 'delayed' }, live), null);
  });

  it('fails a frame whose job stalled out with WORKER_LOST, whatever its record said', () => {
    const job: FrameJobView = { state: 'failed', failedReason: STALLED_OUT_REASON, attemptsMade: 0 };
    for (const state of ['active', 'waiting'] as const) {
      const fix = frameFix(record(state), job, live);
      assert.equal(fix?.state, 'failed');
      assert.equal(fix?.state === 'failed' && fix.error.code, WORKER_LOST);
    }
  });

  it('keeps the error the processor recorded, names an unrecorded one, and fails frames whose job is gone', () => {
    const runtime = { code: 'RUNTIME', message: 'CUDA error' };
    assert.deepEqual(frameFix(record('waiting', { error: runtime }), { state: 'failed', failedReason: 'CUDA error' }, live), { state: 'failed', error: runtime });
    assert.deepEqual(frameFix(record('active'), { state: 'failed', failedReason: 'Connection is closed.' }, live), {
      state: 'failed',
      error: { code: 'INTERNAL', message: 'Connection is closed.' },
    });
    for (const job of ['missing', 'completed'] as const) {
      const fix = frameFix(record('active'), { state: job }, live);
      assert.equal(fix?.state === 'failed' && fix.error.code, WORKER_LOST, job);
    }
  });

  it('cancels instead of failing when the shot was cancelled', () => {
    assert.deepEqual(frameFix(record('active'), { state: 'failed', failedReason: STALLED_OUT_REASON }, { cancelled: true }), { state: 'cancelled' });
    assert.deepEqual(frameFix(record('active'), { state: 'waiting' }, { cancelled: true }), { state: 'waiting' }, 'a worker will see the cancel');
  });
});

describe('cappedBackoff (finalize retries)', () => {
  it('doubles from the job delay up to the cap, jittered down by at most 20 %', () => {
    const job = { opts: { backoff: { type: CAPPED_BACKOFF, delay: 1000 } } } as Parameters<ReturnType<typeof cappedBackoff>>[3];
    const none = cappedBackoff(60_000, () => 0);
    assert.deepEqual([1, 2, 3, 6, 7, 30].map((n) => none(n, CAPPED_BACKOFF, undefined, job)), [1000, 2000, 4000, 32_000, 60_000, 60_000]);
    assert.equal(cappedBackoff(60_000, () => 1)(30, CAPPED_BACKOFF, undefined, job), 48_000);
  });
});
