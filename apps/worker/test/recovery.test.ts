/**
 * What becomes of work when workers die and storage goes away, on real Redis, S3 and BullMQ with
 * the analytic pack (worker deaths are played by BullMQ workers that take a job and never renew
 * its lock — exactly what a SIGKILLed process leaves behind):
 * - a frame whose job stalls past the limit is failed by BullMQ without running; its record says
 *   failed with WORKER_LOST (not `active` on a dead worker), frame.failed goes out once, the shot
 *   fails, and a retry round renders the frame;
 * - the reaper puts a record `active` on a dead worker back to `waiting` once its job waits again;
 * - a worker that stops while the store is down hands its frame back without spending an attempt;
 * - finalize failing several times still ends with shot.json and one final event.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DelayedError, Worker } from 'bullmq';
import { EventBus, jobIds, QUEUES, WORKER_LOST, type FarmEvent, type ShotRecord } from '@celfarm/jobs';
import { freePort } from '@celfarm/services';
import { S3ObjectStore, shotKeys, WaitingObjectStore, type ObjectStore } from '@celfarm/storage';
import type { FarmEvents } from '../src/farm-worker.ts';
import { createFollowUps, createProcessors } from '../src/processors.ts';
import { startQueueWorkers } from '../src/queue-workers.ts';
import { BUCKET, SIZE, sketchPngs, startTestFarm, submitShot, waitFor, waitForShot, type TestFarm } from './fixtures.ts';

/** Delegates to `inner`; `putFailures` makes the next puts of shot.json fail (an error, not an outage). */
class FlakyObjects implements ObjectStore {
  inner!: ObjectStore;
  putFailures = 0;
  manifestPuts = 0;
  async put(key: string, body: Uint8Array, contentType?: string): Promise<void> {
    if (key.endsWith('/shot.json')) {
      if (this.putFailures > 0) {
        this.putFailures--;
        throw Object.assign(new Error('We encountered an internal error. Please try again.'), { name: 'InternalError' });
      }
      this.manifestPuts++;
    }
    return this.inner.put(key, body, contentType);
  }
  get = (key: string) => this.inner.get(key);
  getStream = (key: string) => this.inner.getStream(key);
  head = (key: string) => this.inner.head(key);
  list = (prefix: string) => this.inner.list(prefix);
  deletePrefix = (prefix: string) => this.inner.deletePrefix(prefix);
  presignPut = (key: string, s: number, t?: string) => this.inner.presignPut(key, s, t);
  presignGet = (key: string, s: number) => this.inner.presignGet(key, s);
  ping = () => this.inner.ping();
}

describe('recovery: lost workers, storage outages, finalize retries', () => {
  let f: TestFarm;
  let bus: EventBus;
  const objects = new FlakyObjects();
  const events: FarmEvents = { publish: (type, ref, data) => bus.publish(type, ref, data) };
  const vanilla = { mode: 'vanilla', steps: 4, width: SIZE, height: SIZE };
  const extra: Worker[] = [];

  before(async () => {
    f = await startTestFarm(`rc${process.pid}`, { events, objects });
    objects.inner = f.objects;
    bus = new EventBus(f.records, f.prefix);
    // The tests below start the farm's queue workers when they want them.
    await Promise.all(f.workers.map((w) => w.close()));
  });
  after(async () => {
    await Promise.all(extra.map((w) => w.close(true)));
    await f.stop();
  });

  const connection = () => f.queues.settings.connection;
  /** A shot already `running` with its frame flow queued, as prepare leaves it (no worker takes anything yet). */
  async function runningShot(project: string, frames: number): Promise<ShotRecord> {
    const { shot } = await submitShot(f, { project, settings: vanilla, frames: await sketchPngs(frames) });
    await f.queues.queues.prepare.remove(jobIds.prepare(shot.id));
    const running = (await f.store.update(shot.id, { state: 'running' }))!;
    await f.queues.addFrameFlow({ shotId: shot.id, project }, Array.from({ length: frames }, (_, i) => i + 1), shot.priority, 0);
    return running;
  }
  /** A worker that takes the next frame job, records it as renderFrame does, and then dies (never renews its lock). */
  async function takeAndDie(name: string, shotId: string, frame: number): Promise<void> {
    const doomed = new Worker(QUEUES.frames, null, { connection: connection(), prefix: f.prefix, lockDuration: 300, autorun: false });
    extra.push(doomed);
    const job = await doomed.getNextJob(name);
    assert.equal(job?.id, jobIds.frame(shotId, frame), `${name} took the frame`);
    await f.store.setFrame(shotId, frame, (cur) => ({ state: 'active', attempts: cur.attempts + 1, worker: name }));
  }
  const jobState = async (id: string) => (await f.queues.queues.frames.getJob(id))?.getState();
  const ofShot = async (project: string, shotId: string): Promise<FarmEvent[]> => (await bus.recent(project, 1000)).filter((e) => e.shotId === shotId);

  it('hands a frame back without spending an attempt when its worker stops while the store is down', async () => {
    const shot = await runningShot('rc-outage', 1);
    // The store this worker sees is unreachable (nothing listens there): it waits, then stops.
    const unreachable = new S3ObjectStore({
      endpoint: `http://127.0.0.1:${await freePort()}`, region: 'us-east-1', bucket: BUCKET, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true,
      retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 10 },
    });
    const waiting = new WaitingObjectStore(unreachable, { baseDelayMs: 20, maxDelayMs: 50 });
    const processors = createProcessors(f.freshWorker({ objects: waiting }), { storeRetryMs: 60_000 });
    const taker = new Worker(QUEUES.frames, null, { connection: connection(), prefix: f.prefix, lockDuration: 30_000, autorun: false });
    extra.push(taker);
    const job = (await taker.getNextJob('tok-outage'))!;
    const run = processors.frame(job, 'tok-outage');
    await waitFor(async () => !waiting.availability().available, 'the worker to find the store down');
    assert.equal((await f.store.frame(shot.id, 1))!.state, 'active', 'still its frame while it waits');
    waiting.close();
    await assert.rejects(run, DelayedError);
    unreachable.destroy();
    assert.equal(await jobState(job.id!), 'delayed');
    const again = (await f.queues.queues.frames.getJob(job.id!))!;
    assert.equal(again.attemptsMade, 0, 'no attempt spent');
    const record = (await f.store.frame(shot.id, 1))!;
    assert.deepEqual([record.state, record.error?.code], ['waiting', 'STORE_UNAVAILABLE']);
    await f.queues.removePending(shot.id, [1]);
  });

  it('fails a frame stalled past the limit with WORKER_LOST, publishes frame.failed once, and a retry renders it', async () => {
    const shot = await runningShot('rc-lost', 1);
    const jobId = jobIds.frame(shot.id, 1);
    // The stalled-job check every farm worker runs, with FRAME_STALL_LIMIT 1.
    const checker = new Worker(QUEUES.frames, null, { connection: connection(), prefix: f.prefix, lockDuration: 300, stalledInterval: 150, maxStalledCount: 1, autorun: false });
    extra.push(checker);
    await checker.startStalledCheckTimer();

    await takeAndDie('doomed-1', shot.id, 1);
    await waitFor(async () => (await jobState(jobId)) === 'waiting', 'the first stall to hand the job back', 10_000);
    assert.equal((await f.store.frame(shot.id, 1))!.worker, 'doomed-1');
    // The reaper finds the record active on a worker that holds nothing, and fixes it.
    assert.equal(await f.farm.fate.reap(), 1);
    assert.equal((await f.store.frame(shot.id, 1))!.state, 'waiting');

    await takeAndDie('doomed-2', shot.id, 1);
    await waitFor(async () => (await jobState(jobId)) === 'waiting', 'the second stall', 10_000);
    await checker.close();

    // Now a live worker takes it: BullMQ fails it without running it (stalled more than allowed).
    const workers = startQueueWorkers(createProcessors(f.farm), {
      connection: connection(),
      prefix: f.prefix,
      lockDuration: 1000,
      stallLimit: 1,
      name: 'live',
      followUps: createFollowUps(f.farm, f.queues),
    });
    extra.push(...workers);
    const failed = await waitForShot(f.store, shot.id, ['failed', 'completed'], 20_000);
    assert.equal(failed.state, 'failed');
    assert.match(failed.error!.message, /frame 1 WORKER_LOST/);
    const record = (await f.store.frame(shot.id, 1))!;
    assert.deepEqual([record.state, record.error?.code, record.attempts], ['failed', WORKER_LOST, 2]);
    assert.equal(await jobState(jobId), 'failed');
    assert.ok(!(await f.store.activeFrames()).some((a) => a.shotId === shot.id), 'no record left active');
    await waitFor(async () => (await ofShot('rc-lost', shot.id)).some((e) => e.type === 'shot.failed'), 'shot.failed');
    let es = await ofShot('rc-lost', shot.id);
    assert.equal(es.filter((e) => e.type === 'frame.failed').length, 1, 'frame.failed once');
    assert.equal((es.find((e) => e.type === 'frame.failed')!.data.error as { code: string }).code, WORKER_LOST);
    assert.equal(es.filter((e) => e.type === 'frame.completed').length, 0);

    // Retry, as POST /v1/shots/:id/retry does it: a new round for the failed frames.
    assert.equal((await f.store.frames(shot.id)).filter((x) => x.state === 'failed').length, 1, 'there is something to retry');
    await f.store.update(shot.id, { state: 'running', round: 1, error: undefined }, { from: ['failed', 'completed'] });
    await f.store.setFrame(shot.id, 1, { state: 'waiting', error: undefined, worker: undefined }, ['failed']);
    await f.queues.addFrameFlow({ shotId: shot.id, project: 'rc-lost' }, [1], shot.priority, 1);
    const done = await waitForShot(f.store, shot.id, ['completed'], 20_000);
    assert.equal(done.round, 1);
    const keys = shotKeys(f.objectPrefix, 'rc-lost', shot.id);
    assert.equal((await f.store.frame(shot.id, 1))!.state, 'completed');
    assert.ok(await f.objects.head(keys.output(1)), 'output');
    assert.ok(await f.objects.head(keys.preview(1)), 'preview');
    await waitFor(async () => (await ofShot('rc-lost', shot.id)).some((e) => e.type === 'shot.completed'), 'shot.completed');
    es = await ofShot('rc-lost', shot.id);
    assert.equal(es.filter((e) => e.type === 'frame.completed').length, 1);
    assert.equal(es.filter((e) => e.type === 'frame.failed').length, 1, 'still one frame.failed');
    // A finalize of the earlier round, delivered again late, changes nothing.
    assert.equal(await f.farm.finalizeShot({ shotId: shot.id, project: 'rc-lost', round: 0 }), 'completed');
    assert.equal((await f.store.get(shot.id))!.state, 'completed');
  });

  it('retries a failing finalize until shot.json is written and the final event published, once', async () => {
    // The live workers of the previous test are still running.
    objects.putFailures = 3;
    const before = objects.manifestPuts;
    const { shot } = await submitShot(f, { project: 'rc-final', settings: vanilla, frames: await sketchPngs(2) });
    await waitFor(async () => (await (await f.queues.queues.shots.getJob(jobIds.finalize(shot.id)))?.getState()) === 'completed', 'finalize to succeed in the end', 30_000);
    const finalize = (await f.queues.queues.shots.getJob(jobIds.finalize(shot.id)))!;
    // BullMQ counts the successful attempt too.
    assert.equal(finalize.attemptsMade, 4, 'three failed attempts, then success');
    assert.equal(objects.putFailures, 0);
    assert.equal(objects.manifestPuts - before, 1, 'shot.json written once it could be');
    const manifest = await f.objects.get(shotKeys(f.objectPrefix, 'rc-final', shot.id).manifest);
    assert.ok(manifest, 'shot.json exists');
    assert.equal((JSON.parse(new TextDecoder().decode(manifest)) as { state: string }).state, 'completed');
    const es = await ofShot('rc-final', shot.id);
    assert.equal(es.filter((e) => e.type === 'shot.completed').length, 1, 'shot.completed once');
    assert.equal(es.filter((e) => e.type === 'shot.failed').length, 0);
  });
});
