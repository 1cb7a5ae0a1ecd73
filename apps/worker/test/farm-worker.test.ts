/**
 * The worker against real Redis and S3 with the analytic pack: shots submitted the way the API
 * does them run prepare → frames → finalize through BullMQ, and the tests check what a studio
 * sees — states, colours at known pixels, lineage, byte-identical reruns, failures that name
 * their frame and cause, and cancellation that stops sampling.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { frameSeed, jobIds } from '@celfarm/jobs';
import { analyticAttention } from '@celfarm/model-kit';
import { createMetrics } from '@celfarm/metrics';
import { deserializeReferenceContext, PipelineError } from '@celfarm/pipeline';
import { referenceContextKey, shotKeys } from '@celfarm/storage';
import {
  assertClose,
  decodePng,
  rgbAt,
  SIZE,
  sketchPngs,
  stageShot,
  startTestFarm,
  submitShot,
  waitFor,
  waitForShot,
  type TestFarm,
} from './fixtures.ts';
import { toQueueError } from '../src/processors.ts';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const attend = analyticAttention;

describe('FarmWorker on redis-server + s3rver', () => {
  let f: TestFarm;
  before(async () => {
    f = await startTestFarm(`wk${process.pid}`);
  });
  after(() => f.stop());

  const full = { mode: 'full', steps: 6, guidanceScale: 1, width: SIZE, height: SIZE };

  it('colorizes a 3-frame full-mode shot: red character, styled backdrop, lineage in shot.json', async () => {
    const sketches = await sketchPngs(3);
    const { shot, reference } = await submitShot(f, { settings: full, seed: 11, frames: sketches });
    const done = await waitForShot(f.store, shot.id, ['completed', 'failed']);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    assert.equal(done.referenceSha256, sha256(reference));
    assert.match(done.contextKey ?? '', /^[0-9a-f]{64}$/);

    // Expected colours from the stored context, by the analytic pack's closed form (README §7):
    // foreground = most chromatic reference colour, background = darkest colour of the white-out
    // reference, both pulled by the style vector (full mode).
    const ctxBytes = await f.objects.get(referenceContextKey(f.objectPrefix, done.contextKey!));
    assert.ok(ctxBytes, 'the reference context is in the store');
    const ctx = deserializeReferenceContext(ctxBytes);
    const style = ctx.style![11]!.data;
    const styled = (c: number[]) => c.map((v, i) => v + (v * style[i]! + style[4 + i]!));
    const fg = styled(attend(ctx.emb, 3, 1));
    const bg = styled(attend(ctx.hsBg![11]!, 4, -1));
    assert.ok(fg[0]! > 0.5 && fg[1]! < -0.5 && fg[2]! < -0.5, `foreground is red: ${fg}`);

    const keys = shotKeys(f.objectPrefix, shot.project, shot.id);
    const frames = await f.store.frames(shot.id);
    assert.deepEqual(frames.map((x) => x.state), ['completed', 'completed', 'completed']);
    for (const [i, fr] of frames.entries()) {
      assert.equal(fr.output, keys.output(i + 1));
      assert.equal(fr.worker, 'test-worker');
      assert.equal(fr.attempts, 1);
      assert.equal(fr.sketchSha256, sha256(sketches[i]!));
      assert.ok(fr.seconds! > 0);
      const png = await f.objects.get(keys.output(i + 1));
      assert.ok(png, `output ${i + 1} exists`);
      const img = await decodePng(png);
      assert.equal(img.width, SIZE);
      assertClose(rgbAt(img, SIZE / 2, SIZE / 2), fg, 0.02, `frame ${i + 1} centre (inside the character)`);
      assertClose(rgbAt(img, 4, 4), bg, 0.02, `frame ${i + 1} corner (backdrop)`);
      assert.ok(await f.objects.head(keys.sketchMask(i + 1)), `sketch mask ${i + 1} stored`);
    }
    assert.ok(await f.objects.head(keys.referenceMask), 'reference mask stored');

    const manifest = JSON.parse(new TextDecoder().decode((await f.objects.get(keys.manifest))!)) as Record<string, unknown>;
    assert.equal(manifest.state, 'completed');
    assert.deepEqual(manifest.pack, { id: 'analytic', version: '1.0.0' });
    assert.deepEqual(manifest.reference, { key: keys.reference, sha256: sha256(reference) });
    assert.deepEqual(
      manifest.frames,
      sketches.map((s, i) => ({
        frame: i + 1,
        seed: frameSeed(11, i + 1),
        sketch: keys.frameInput(i + 1),
        sketchSha256: sha256(s),
        output: keys.output(i + 1),
        state: 'completed',
        qa: frames[i]!.qa,
      })),
    );
    assert.ok(frames.every((fr) => fr.qa?.scores.palette !== undefined), 'with the QA scores of each frame');
    assert.ok(f.lines.some((l) => l.startsWith(`frame shot=${shot.id} frame=2 seconds=`)), 'one log line per frame');
  });

  it('leaves a completed frame alone when its job runs again; the same inputs render the same bytes, from a rebuilt context too', async () => {
    const sketches = await sketchPngs(1);
    const { shot } = await submitShot(f, { settings: full, seed: 3, frames: sketches });
    await waitForShot(f.store, shot.id, ['completed']);
    const keys = shotKeys(f.objectPrefix, shot.project, shot.id);
    const first = await f.objects.get(keys.output(1));
    const manifest = await f.objects.get(keys.manifest);
    const record = await f.store.frame(shot.id, 1);

    // At-least-once delivery: the same payload again, as a second job. The frame is done: the
    // job ends without taking it back (the record stays as it was) or rendering it again.
    const again = await f.queues.queues.frames.add('frame', { shotId: shot.id, project: shot.project, frame: 1 }, { jobId: `${jobIds.frame(shot.id, 1)}-again` });
    await waitFor(async () => (await again.getState()) === 'completed', 'the rerun job');
    assert.equal((await f.queues.queues.frames.getJob(again.id!))!.returnvalue, 'completed');
    assert.deepEqual(await f.store.frame(shot.id, 1), record, 'the completed record is untouched');
    assert.deepEqual(await f.objects.get(keys.output(1)), first, 'same output bytes');

    // The same shot again, rendered by a worker that never saw it, with the stored context gone:
    // it rebuilds the context, and the colour comes out byte for byte the same.
    const contextKey = referenceContextKey(f.objectPrefix, (await f.store.get(shot.id))!.contextKey!);
    await f.objects.deletePrefix(contextKey);
    const { shot: twin } = await stageShot(f, { settings: full, seed: 3, frames: sketches });
    const outcome = await f.freshWorker().renderFrame(
      { shotId: twin.id, project: twin.project, frame: 1 },
      { jobId: 'direct', attempt: 1, attempts: 1, reportProgress: async () => undefined },
    );
    assert.equal(outcome, 'completed');
    assert.ok(await f.objects.head(contextKey), 'the rebuilt context is stored again');
    assert.deepEqual(await f.objects.get(shotKeys(f.objectPrefix, twin.project, twin.id).output(1)), first, 'same output bytes after a rebuild');

    await f.farm.finalizeShot({ shotId: shot.id, project: shot.project });
    assert.deepEqual(await f.objects.get(keys.manifest), manifest, 'finalize rewrites identical shot.json');
  });

  it('refuses a late worker a frame that completed or was cancelled: the record stays, nothing renders', async () => {
    const { shot } = await stageShot(f, { settings: { mode: 'vanilla', steps: 4, width: SIZE, height: SIZE }, frames: await sketchPngs(2) });
    const attempt = { jobId: 'direct', attempt: 1, attempts: 2, reportProgress: async () => undefined };
    assert.equal(await f.freshWorker().renderFrame({ shotId: shot.id, project: shot.project, frame: 1 }, attempt), 'completed');
    // The API cancelled frame 2 after the late worker had read its shot (still running).
    await f.store.setFrame(shot.id, 2, { state: 'cancelled' }, ['waiting']);
    const before = await f.store.frames(shot.id);

    let rendered = 0;
    const late = f.freshWorker({
      workerId: 'late-worker',
      host: { prepare: (i, s, o) => f.host.prepare(i, s, o), frame: (...args) => (rendered++, f.host.frame(...args)) },
    });
    assert.equal(await late.renderFrame({ shotId: shot.id, project: shot.project, frame: 1 }, attempt), 'completed');
    assert.equal(await late.renderFrame({ shotId: shot.id, project: shot.project, frame: 2 }, attempt), 'cancelled');
    assert.equal(rendered, 0, 'nothing rendered');
    assert.deepEqual(await f.store.frames(shot.id), before, 'both records as they were');
    assert.deepEqual((await f.store.frames(shot.id)).map((x) => [x.state, x.worker]), [['completed', 'test-worker'], ['cancelled', undefined]]);
    assert.deepEqual((await f.store.activeFrames()).filter((a) => a.shotId === shot.id), [], 'neither went active');
  });

  it('fails a corrupt sketch with INVALID_IMAGE; with failedFrameShare 0 the shot fails, the other frames complete', async () => {
    const [a, , c] = await sketchPngs(3);
    const corrupt = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...new Array<number>(64).fill(7)]);
    const failedBefore = (await f.metrics.frames.get()).values.find((v) => v.labels.reason === 'INVALID_IMAGE')?.value ?? 0;
    const { shot } = await submitShot(f, { settings: { mode: 'vanilla', steps: 4, width: SIZE, height: SIZE }, frames: [a!, corrupt, c!] });
    const done = await waitForShot(f.store, shot.id, ['completed', 'failed']);
    assert.equal(done.state, 'failed');
    assert.equal(done.error?.code, 'FRAMES_FAILED');
    assert.match(done.error!.message, /1 of 3 frames failed.*frame 2 INVALID_IMAGE \(frames\[1\]\)/);

    const frames = await f.store.frames(shot.id);
    assert.deepEqual(frames.map((x) => x.state), ['completed', 'failed', 'completed']);
    assert.equal(frames[1]!.error?.code, 'INVALID_IMAGE');
    assert.equal(frames[1]!.error?.field, 'frames[1]');
    assert.equal(frames[1]!.error?.permanent, true, 'bad input: a retry would fail the same way');
    assert.equal(frames[1]!.attempts, 1, 'bad input is not retried');
    assert.equal(frames[1]!.sketchSha256, sha256(corrupt), 'the corrupt input is still in the lineage');
    const keys = shotKeys(f.objectPrefix, shot.project, shot.id);
    assert.ok(await f.objects.head(keys.output(1)));
    assert.equal(await f.objects.head(keys.output(2)), null);
    assert.ok(await f.objects.head(keys.output(3)));
    const job = await f.queues.queues.frames.getJob(jobIds.frame(shot.id, 2));
    assert.equal(await job!.getState(), 'failed');
    const failedAfter = (await f.metrics.frames.get()).values.find((v) => v.labels.reason === 'INVALID_IMAGE')?.value ?? 0;
    assert.equal(failedAfter - failedBefore, 1);
    const manifest = JSON.parse(new TextDecoder().decode((await f.objects.get(keys.manifest))!)) as { state: string };
    assert.equal(manifest.state, 'failed');
  });

  it('completes a shot whose failed share stays within failedFrameShare', async () => {
    const [a, b] = await sketchPngs(3);
    const { shot } = await submitShot(f, {
      settings: { mode: 'vanilla', steps: 4, width: SIZE, height: SIZE },
      frames: [a!, b!, new Uint8Array([1, 2, 3])],
      failedFrameShare: 0.5,
    });
    const done = await waitForShot(f.store, shot.id, ['completed', 'failed']);
    assert.equal(done.state, 'completed');
    assert.deepEqual((await f.store.frames(shot.id)).map((x) => x.state), ['completed', 'completed', 'failed']);
  });

  it('keeps a frame waiting after a transient failure while attempts remain, and fails it (retryable) after the last', async () => {
    const { shot } = await stageShot(f, { settings: { mode: 'vanilla', steps: 4, width: SIZE, height: SIZE }, frames: await sketchPngs(1) });
    const ref = { shotId: shot.id, project: shot.project, frame: 1 };
    const attempt = (n: number) => ({ jobId: 'direct', attempt: n, attempts: 2, reportProgress: async () => undefined });
    // An execution-provider fault on the inference thread: the real host, but frames throw RUNTIME.
    const fault = new PipelineError('RUNTIME', 'CUDA error: an illegal memory access was encountered');
    const metrics = createMetrics('worker');
    const faulty = f.freshWorker({ metrics, host: { prepare: (i, s, o) => f.host.prepare(i, s, o), frame: () => Promise.reject(fault) } });
    assert.equal(toQueueError(fault), fault, 'a runtime fault stays retryable for the queue');

    await assert.rejects(faulty.renderFrame(ref, attempt(1)), (e: unknown) => e === fault);
    let fr = await f.store.frame(shot.id, 1);
    assert.deepEqual([fr?.state, fr?.error?.code], ['waiting', 'RUNTIME'], 'attempts remain: back to waiting');
    await assert.rejects(faulty.renderFrame(ref, attempt(2)), (e: unknown) => e === fault);
    fr = await f.store.frame(shot.id, 1);
    assert.deepEqual([fr?.state, fr?.error?.code, fr?.error?.permanent], ['failed', 'RUNTIME', undefined], 'last attempt: failed, and worth a retry');
    assert.equal((await metrics.frames.get()).values.find((v) => v.labels.outcome === 'failed')?.labels.reason, 'RUNTIME');

    // A retry round hands the frame back (as the API's retry does); a later success clears the error.
    await f.store.setFrame(shot.id, 1, { state: 'waiting' }, ['failed']);
    assert.equal(await f.freshWorker().renderFrame(ref, attempt(1)), 'completed');
    fr = await f.store.frame(shot.id, 1);
    assert.equal(fr?.state, 'completed');
    assert.equal(fr?.error, undefined, 'a later success clears the error');
  });

  it('fails the shot in prepare when its reference object is missing; no frame runs', async () => {
    const { shot } = await submitShot(f, { settings: full, frames: await sketchPngs(2), withoutReferenceObject: true });
    const done = await waitForShot(f.store, shot.id, ['failed', 'completed']);
    assert.equal(done.state, 'failed');
    assert.deepEqual({ code: done.error?.code, field: done.error?.field }, { code: 'MISSING_INPUT', field: 'reference' });
    // The shot record fails inside the processor; BullMQ marks the job failed just after.
    await waitFor(async () => (await (await f.queues.queues.prepare.getJob(jobIds.prepare(shot.id)))?.getState()) === 'failed', 'the prepare job to be failed');
    // Read again: a job object fetched before it failed still carries its earlier attempts.
    const prepare = (await f.queues.queues.prepare.getJob(jobIds.prepare(shot.id)))!;
    assert.equal(prepare.attemptsMade, 1, 'bad input is not retried');
    assert.deepEqual((await f.store.frames(shot.id)).map((x) => x.state), ['waiting', 'waiting']);
  });

  it('stops an active frame at a step boundary when its shot is cancelled mid-sampling', async () => {
    // Big and guided enough that sampling takes about a second on CPU.
    const steps = 100;
    const settings = { mode: 'vanilla', steps, width: 768, height: 768, batchSize: 8, guidanceScale: 4 };
    const { shot } = await submitShot(f, { settings, frames: await sketchPngs(1) });
    const sampling = await waitFor(async () => {
      const fr = (await f.store.frames(shot.id))[0];
      return fr?.state === 'active' && fr.stage === 'sample' ? fr : null;
    }, 'the frame to sample');
    await f.store.update(shot.id, { state: 'cancelled' });

    const cancelled = await waitFor(async () => {
      const fr = await f.store.frame(shot.id, 1);
      return fr?.state === 'cancelled' ? fr : null;
    }, 'the frame to be cancelled');
    assert.equal(cancelled.stage, 'sample');
    assert.equal(cancelled.steps, steps);
    assert.ok(cancelled.step! >= sampling.step! && cancelled.step! < steps, `stopped at step ${cancelled.step} of ${steps}`);
    const keys = shotKeys(f.objectPrefix, shot.project, shot.id);
    assert.equal(await f.objects.head(keys.output(1)), null, 'no output for a cancelled frame');
    const job = await f.queues.queues.frames.getJob(jobIds.frame(shot.id, 1));
    await waitFor(async () => (await job!.getState()) === 'completed', 'the frame job to end normally');

    const finalize = await f.queues.queues.shots.getJob(jobIds.finalize(shot.id));
    await waitFor(async () => (await finalize!.getState()) === 'completed', 'finalize');
    assert.equal((await f.store.get(shot.id))!.state, 'cancelled', 'finalize leaves a cancelled shot cancelled');
  });
});
