/** What frame records add up to: counts, which failures a retry could fix, the shot's outcome. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeFailures, frameCounts, shotOutcome } from '../src/outcome.ts';
import { isRetryable } from '../src/tally.ts';
import type { FrameRecord } from '../src/records.ts';

const frame = (n: number, state: FrameRecord['state'], error?: FrameRecord['error']): FrameRecord => ({ frame: n, state, attempts: 1, seed: n, ...(error ? { error } : {}) });
const invalid = { code: 'INVALID_IMAGE', field: 'frames[1]', message: 'not a PNG', permanent: true };
const runtime = { code: 'RUNTIME', message: 'CUDA error' };

describe('shot outcome', () => {
  it('counts every state', () => {
    assert.deepEqual(frameCounts([frame(1, 'completed'), frame(2, 'failed', invalid), frame(3, 'completed')]), {
      waiting: 0,
      active: 0,
      completed: 2,
      failed: 1,
      cancelled: 0,
    });
  });

  it('offers a retry only for failures that are not permanent', () => {
    assert.equal(isRetryable(frame(1, 'failed', runtime)), true);
    assert.equal(isRetryable(frame(2, 'failed', { code: 'WORKER_LOST', message: 'lost' })), true);
    assert.equal(isRetryable(frame(3, 'failed', invalid)), false, 'bad input fails again');
    assert.equal(isRetryable(frame(4, 'completed')), false);
  });

  it('fails a shot whose failed share exceeds its allowance, naming frames and causes', () => {
    const frames = [frame(1, 'completed'), frame(2, 'failed', invalid), frame(3, 'completed')];
    assert.deepEqual(shotOutcome({ frameCount: 3, failedFrameShare: 0.5 }, frames), { state: 'completed' });
    const failed = shotOutcome({ frameCount: 3, failedFrameShare: 0 }, frames);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.error?.code, 'FRAMES_FAILED');
    assert.equal(failed.error?.message, '1 of 3 frames failed (allowed share 0): frame 2 INVALID_IMAGE (frames[1]): not a PNG');
    // A frame record that went missing counts as failed.
    assert.equal(shotOutcome({ frameCount: 3, failedFrameShare: 0.4 }, [frame(1, 'completed'), frame(3, 'completed')]).state, 'completed');
    assert.equal(shotOutcome({ frameCount: 3, failedFrameShare: 0.3 }, [frame(1, 'completed'), frame(3, 'completed')]).state, 'failed');
  });

  it('lists the first five failures and counts the rest', () => {
    const many = Array.from({ length: 7 }, (_, i) => frame(7 - i, 'failed', runtime));
    assert.equal(describeFailures(many), `${[1, 2, 3, 4, 5].map((n) => `frame ${n} RUNTIME: CUDA error`).join('; ')}; and 2 more`);
  });
});
