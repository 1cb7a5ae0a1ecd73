/**
 * Reference chaining to previous outputs (`referenceChain: previous`): a frame whose link's
 * reference frame has not finished waits (its job delayed, no attempt spent, its record as it
 * was); once that frame is done it renders. Real redis-server and s3rver, the analytic pack.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ChainNotReadyError } from '../src/errors.ts';
import { sketchPngs, stageShot, startTestFarm, type TestFarm } from './fixtures.ts';

describe('reference chain: previous', () => {
  let f: TestFarm;
  before(async () => {
    f = await startTestFarm(`chain${process.pid}`);
  });
  after(async () => {
    await f?.stop();
  });

  it("holds a frame until its link's reference frame is done, without touching its record", async () => {
    const { shot } = await stageShot(f, { settings: { mode: 'vanilla', steps: 2 }, frames: await sketchPngs(3) });
    await f.store.update(shot.id, { consistency: { sharedNoise: false, paletteLock: 'off', referenceChain: 'previous', chainLink: 1 } });
    const attempt = (n: number) => ({ jobId: `${shot.id}-${n}`, attempt: 1, attempts: 2, reportProgress: async () => undefined });
    const before3 = await f.store.frame(shot.id, 3);
    await assert.rejects(f.farm.renderFrame({ shotId: shot.id, project: shot.project, frame: 3 }, attempt(3)), (e: unknown) => e instanceof ChainNotReadyError && /frame 3 waits for frame 2/.test(e.message));
    assert.deepEqual(await f.store.frame(shot.id, 3), before3, 'nothing of frame 3 changed');
    // Frame 1 needs nothing; frame 2 then may render, and frame 3 after it.
    assert.equal(await f.farm.renderFrame({ shotId: shot.id, project: shot.project, frame: 1 }, attempt(1)), 'completed');
    await assert.rejects(f.farm.renderFrame({ shotId: shot.id, project: shot.project, frame: 3 }, attempt(3)), ChainNotReadyError);
    assert.equal(await f.farm.renderFrame({ shotId: shot.id, project: shot.project, frame: 2 }, attempt(2)), 'completed');
    assert.equal(await f.farm.renderFrame({ shotId: shot.id, project: shot.project, frame: 3 }, attempt(3)), 'completed');
    assert.deepEqual((await f.store.frames(shot.id)).map((r) => r.referenceFrom ?? null), [null, { frame: 1, take: 0 }, { frame: 2, take: 0 }]);
  });

  it('does not hold a frame whose reference frame failed: it renders from the last completed output before', async () => {
    const { shot } = await stageShot(f, { settings: { mode: 'vanilla', steps: 2 }, frames: await sketchPngs(2) });
    await f.store.update(shot.id, { consistency: { sharedNoise: false, paletteLock: 'off', referenceChain: 'previous', chainLink: 1 } });
    await f.store.setFrame(shot.id, 1, { state: 'active', worker: 'w' });
    await f.store.setFrame(shot.id, 1, { state: 'failed', error: { code: 'INTERNAL', message: 'boom' } });
    assert.equal(await f.farm.renderFrame({ shotId: shot.id, project: shot.project, frame: 2 }, { jobId: 'x', attempt: 1, attempts: 2, reportProgress: async () => undefined }), 'completed');
    assert.equal((await f.store.frame(shot.id, 2))!.referenceFrom, undefined, "no completed output before it: the shot's reference");
  });
});
