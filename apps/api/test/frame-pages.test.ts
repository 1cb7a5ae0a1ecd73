/**
 * Pages of a shot's frames (`GET /v1/shots/{id}/frames`) from its state letters and records read a
 * chunk at a time: the same pages as filtering every record, and a first page of a long shot reads
 * about a page of records, not the shot.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FrameQuery } from '@celfarm/contract';
import { statesOf, type FrameRecord, type FrameState } from '@celfarm/jobs';
import { frameMatches, pageOfFrames } from '../src/shots/shot-view.ts';

const STATES: FrameState[] = ['completed', 'completed', 'failed', 'waiting', 'active', 'completed', 'cancelled'];
const flagged = { scores: { lineFidelity: 0.1 }, thresholds: { lineFidelity: 0.5 }, flagged: ['lineFidelity' as const] };

/** A long shot with every state, some completed frames flagged and some of those approved. */
const shot = (n: number): FrameRecord[] =>
  Array.from({ length: n }, (_, i) => {
    const state = STATES[(i * 7 + (i >> 3)) % STATES.length]!;
    const f: FrameRecord = { frame: i + 1, state, attempts: 1, seed: i };
    if (state === 'completed' && i % 3 === 0) f.qa = flagged;
    if (f.qa && i % 2 === 0) f.review = { state: 'approved', at: 'now' };
    return f;
  });

/** The page as a plain filter over every record defines it. */
function expectedPage(frames: FrameRecord[], q: FrameQuery): { frames: number[]; next: string | null } {
  const after = q.cursor === undefined ? 0 : Number(q.cursor);
  const all = frames.filter((f) => f.frame > after && (!q.state || q.state.includes(f.state)) && frameMatches(f, q));
  const page = all.slice(0, q.limit);
  return { frames: page.map((f) => f.frame), next: all.length > q.limit ? String(page.at(-1)!.frame) : null };
}

describe('frame pages', () => {
  const frames = shot(2000);
  const states = statesOf(frames);
  let read = 0;
  const reader = async (numbers: readonly number[]) => {
    read += numbers.length;
    return numbers.map((n) => frames[n - 1]!);
  };

  it('are the pages a filter over every record gives, for every filter, page after page', async () => {
    const queries: FrameQuery[] = [
      { limit: 50 },
      { limit: 7, state: ['completed'] },
      { limit: 100, state: ['failed', 'cancelled'] },
      { limit: 30, flagged: true },
      { limit: 30, flagged: false, state: ['completed'] },
      { limit: 25, review: 'needed' },
      { limit: 500, review: 'approved' },
    ];
    for (const base of queries) {
      let cursor: string | undefined;
      let pages = 0;
      do {
        const q = { ...base, ...(cursor !== undefined ? { cursor } : {}) };
        const got = await pageOfFrames(states, reader, q);
        const want = expectedPage(frames, q);
        assert.deepEqual({ frames: got.frames.map((f) => f.frame), next: got.next }, want, JSON.stringify(q));
        cursor = got.next ?? undefined;
        pages++;
      } while (cursor !== undefined);
      assert.ok(pages >= 2 || base.limit >= 100, `${JSON.stringify(base)} paged (${pages})`);
    }
  });

  it('read about a page of records for a first page, not the whole shot', async () => {
    read = 0;
    const page = await pageOfFrames(states, reader, { limit: 50 });
    assert.equal(page.frames.length, 50);
    assert.ok(read <= 64, `${read} records read for a page of 50`);
    read = 0;
    await pageOfFrames(states, reader, { limit: 20, state: ['failed'] });
    assert.ok(read <= 64, `${read} records read for a page of failed frames: only failed ones are candidates`);
  });

  it('let the record decide when its state moved after the letters were read', async () => {
    const moved = frames.map((f) => (f.frame === 1 ? { ...f, state: 'failed' as const } : f));
    const page = await pageOfFrames(states, async (numbers) => numbers.map((n) => moved[n - 1]!), { limit: 5, state: ['completed'] });
    assert.ok(!page.frames.some((f) => f.frame === 1), 'frame 1 is failed now: not on a page of completed frames');
  });
});
