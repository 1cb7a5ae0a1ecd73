/**
 * The farm events of a shot (what webhooks deliver), on real Redis and S3 with the analytic pack:
 * shot.created once, with the shot itself; shot.started after prepare, one frame.completed per
 * frame with its output, seed and seconds — also when its job runs again —, frame.failed only
 * when a failure is final, and the shot's outcome with its frame counts, from finalize or from a
 * failed prepare.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EventBus, frameSeed, type FarmEvent } from '@celfarm/jobs';
import { PipelineError } from '@celfarm/pipeline';
import { shotKeys } from '@celfarm/storage';
import type { FarmEvents } from '../src/farm-worker.ts';
import { SIZE, sketchPngs, stageShot, startTestFarm, submitShot, waitForShot, type TestFarm } from './fixtures.ts';

describe('FarmWorker events', () => {
  let f: TestFarm;
  let bus: EventBus;
  /** What the worker itself published, in order. */
  const fromWorker: string[] = [];
  // The bus needs the farm's Redis, which exists only once the farm has started.
  const events: FarmEvents = {
    publish: (type, ref, data) => {
      fromWorker.push(`${type}:${ref.shotId}`);
      return bus.publish(type, ref, data);
    },
  };
  before(async () => {
    f = await startTestFarm(`ev${process.pid}`, { events });
    bus = new EventBus(f.records, f.prefix);
  });
  after(() => f.stop());

  const vanilla = { mode: 'vanilla', steps: 4, width: SIZE, height: SIZE };
  const summary = (es: FarmEvent[]) => es.map((e) => `${e.type}${e.frame ? `#${e.frame}` : ''}`).sort();
  /** The project's events once `type` is among them: finalize publishes just after the state changes. */
  async function eventsOnce(project: string, type: FarmEvent['type']): Promise<FarmEvent[]> {
    const until = Date.now() + 10_000;
    for (;;) {
      const es = await bus.recent(project);
      if (es.some((e) => e.type === type) || Date.now() > until) return es;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('publishes shot.started, frame.completed/failed per frame and shot.failed with the counts', async () => {
    const [a, , c] = await sketchPngs(3);
    const corrupt = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
    const { shot } = await submitShot(f, { project: 'ev-mixed', settings: vanilla, seed: 21, frames: [a!, corrupt, c!] });
    await waitForShot(f.store, shot.id, ['failed', 'completed']);
    const es = await eventsOnce('ev-mixed', 'shot.failed');
    // frame.flagged too: the analytic pack inks whole latent cells, and shot QA finds the 3-px lines lost.
    assert.deepEqual(summary(es), ['frame.completed#1', 'frame.completed#3', 'frame.failed#2', 'frame.flagged#1', 'frame.flagged#3', 'shot.created', 'shot.failed', 'shot.started']);
    // Announced once, by the write that created the shot (the worker does not announce it), before it starts.
    const order = es.map((e) => e.type);
    assert.equal(order.filter((t) => t === 'shot.created').length, 1);
    assert.equal(order[0], 'shot.created', order.join(', '));
    assert.ok(fromWorker.includes(`shot.started:${shot.id}`));
    assert.ok(!fromWorker.includes(`shot.created:${shot.id}`), fromWorker.join(', '));
    assert.ok(es.every((e) => e.shotId === shot.id && e.project === 'ev-mixed'));
    const keys = shotKeys(f.objectPrefix, 'ev-mixed', shot.id);
    const done = es.find((e) => e.type === 'frame.completed' && e.frame === 3)!;
    assert.equal(done.data.output, keys.output(3));
    assert.equal(done.data.seed, frameSeed(21, 3));
    assert.ok((done.data.seconds as number) > 0);
    const failed = es.find((e) => e.type === 'frame.failed')!;
    assert.deepEqual((failed.data.error as { code: string; field: string }).code, 'INVALID_IMAGE');
    assert.deepEqual((failed.data.error as { code: string; field: string }).field, 'frames[1]');
    const outcome = es.find((e) => e.type === 'shot.failed')!;
    assert.deepEqual(outcome.data.counts, { waiting: 0, active: 0, completed: 2, failed: 1, cancelled: 0 });
    assert.equal((outcome.data.error as { code: string }).code, 'FRAMES_FAILED');
    // Everything is JSON as it was published.
    assert.deepEqual(JSON.parse(JSON.stringify(es)), es);
  });

  it('publishes frame.failed only after the last attempt, and one frame.completed however often a frame runs', async () => {
    const { shot } = await submitShot(f, { project: 'ev-retry', settings: vanilla, frames: await sketchPngs(1) });
    await waitForShot(f.store, shot.id, ['completed']);
    await eventsOnce('ev-retry', 'shot.completed');
    const attempt = (n: number) => ({ jobId: 'direct', attempt: n, attempts: 2, reportProgress: async () => undefined });
    // The frame's job runs again (a worker died after rendering it): no second frame.completed.
    assert.equal(await f.freshWorker().renderFrame({ shotId: shot.id, project: shot.project, frame: 1 }, attempt(1)), 'completed');
    assert.deepEqual(summary(await bus.recent('ev-retry')), ['frame.completed#1', 'frame.flagged#1', 'shot.completed', 'shot.created', 'shot.started']);

    const { shot: flaky } = await stageShot(f, { project: 'ev-retry', settings: vanilla, frames: await sketchPngs(1) });
    const ref = { shotId: flaky.id, project: flaky.project, frame: 1 };
    const fault = new PipelineError('RUNTIME', 'CUDA error: an illegal memory access was encountered');
    const faulty = f.freshWorker({ host: { prepare: (i, s, o) => f.host.prepare(i, s, o), frame: () => Promise.reject(fault) } });
    const failures = async () => (await bus.recent('ev-retry')).filter((e) => e.type === 'frame.failed');
    await assert.rejects(faulty.renderFrame(ref, attempt(1)));
    assert.equal((await failures()).length, 0, 'attempts remain: nothing final yet');
    await assert.rejects(faulty.renderFrame(ref, attempt(2)));
    const failed = await failures();
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.shotId, flaky.id);
    assert.deepEqual(failed[0]!.data, { error: { code: 'RUNTIME', message: fault.message }, attempts: 2 }, 'not permanent: worth a retry');
  });

  it('announces a frame whose worker died between recording and announcing it, when its job runs again', async () => {
    const { shot } = await stageShot(f, { project: 'ev-lost', settings: vanilla, frames: await sketchPngs(1) });
    const ref = { shotId: shot.id, project: shot.project, frame: 1 };
    const attempt = (n: number) => ({ jobId: 'direct', attempt: n, attempts: 3, reportProgress: async () => undefined });
    // The worker "dies" right after the record says completed: its frame.completed never goes out.
    const dying = f.freshWorker({
      events: { publish: (type, r, d) => (type === 'frame.completed' ? Promise.reject(new Error('worker killed')) : bus.publish(type, r, d)) },
    });
    await assert.rejects(dying.renderFrame(ref, attempt(1)), /worker killed/);
    assert.equal((await f.store.frame(shot.id, 1))?.state, 'completed');
    assert.ok(!(await bus.recent('ev-lost')).some((e) => e.type === 'frame.completed'));
    // The job runs again on another worker: the frame is not rendered again, but it is announced, once.
    assert.equal(await f.freshWorker().renderFrame(ref, attempt(2)), 'completed');
    assert.equal(await f.freshWorker().renderFrame(ref, attempt(3)), 'completed');
    const done = (await bus.recent('ev-lost')).filter((e) => e.type === 'frame.completed');
    assert.equal(done.length, 1);
    assert.equal(done[0]!.data.output, shotKeys(f.objectPrefix, 'ev-lost', shot.id).output(1));
    // Its frame.flagged (the analytic pack's frames are flagged for lineFidelity) went with it, once.
    const flagged = (await bus.recent('ev-lost')).filter((e) => e.type === 'frame.flagged');
    assert.deepEqual(flagged.map((e) => e.data.flagged), [['lineFidelity']]);
  });

  it('publishes shot.failed when prepare fails for good (the shot never reaches finalize)', async () => {
    const { shot } = await submitShot(f, { project: 'ev-prepare', settings: vanilla, frames: await sketchPngs(2), withoutReferenceObject: true });
    await waitForShot(f.store, shot.id, ['failed']);
    const es = await eventsOnce('ev-prepare', 'shot.failed');
    assert.deepEqual(summary(es), ['shot.created', 'shot.failed']);
    const outcome = es.find((e) => e.type === 'shot.failed')!;
    assert.deepEqual(outcome.data.counts, { waiting: 2, active: 0, completed: 0, failed: 0, cancelled: 0 });
    const error = outcome.data.error as { code: string; field: string; permanent?: boolean };
    assert.deepEqual([error.code, error.field, error.permanent], ['MISSING_INPUT', 'reference', true]);
  });
});
