/**
 * Shot QA in the worker, on real Redis and S3 with the analytic pack: every completed frame has
 * its palette and line fidelity, every frame after the first its flicker against the previous one
 * (scored by whichever of the two finished last), the same numbers on a rerun and whatever order
 * the frames finish in; shot.json carries them; a frame past a threshold is flagged, announced
 * once (`frame.flagged`) and counted once per reason.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EventBus, QA_SCORES, type FarmEvent, type FrameRecord } from '@celfarm/jobs';
import { sketchFrame } from '@celfarm/model-kit/samples';
import { decodeImage, encodePng, encodePngRgb8, fitLetterbox, planar, preprocessSketch, toRgb8 } from '@celfarm/pipeline';
import { DEFAULT_THRESHOLDS } from '@celfarm/qa';
import { shotKeys } from '@celfarm/storage';
import type { FarmEvents } from '../src/farm-worker.ts';
import { sketchAtOutput, storedOutput } from '../src/frame-qa.ts';
import { decodePng, SIZE, sketchPngs, stageShot, startTestFarm, submitShot, waitForShot, type TestFarm } from './fixtures.ts';

describe('what shot QA reads', () => {
  const noisy = (channels: number, h: number, w: number) => {
    const p = planar(channels, h, w);
    for (let i = 0; i < p.data.length; i++) p.data[i] = Math.fround(Math.sin(i * 12.9898) * 1.2);
    return p;
  };

  it('reads the output as stored: the 8-bit pixels, equal to decoding the PNG', async () => {
    const rgb8 = toRgb8(noisy(3, 48, 80));
    const decoded = await decodeImage(await encodePngRgb8(rgb8, 80, 48), 'output', { maxPixels: 1 << 20 });
    assert.deepEqual(storedOutput(rgb8, 80, 48), decoded);
  });

  it('fits the sketch as the pipeline does: letterboxed, cropped; at the canvas size as itself', () => {
    const sketch = noisy(3, 40, 64);
    const s = { preprocessor: 'invert', height: 64, width: 64, crop: false } as const;
    const model = preprocessSketch(sketch, 'invert');
    assert.deepEqual(sketchAtOutput(sketch, s), fitLetterbox(model, 64, 64).image);
    const { image, box } = fitLetterbox(model, 64, 64);
    assert.deepEqual([sketchAtOutput(sketch, { ...s, crop: true }).height, box.height, image.height], [40, 40, 64]);
    // (Up to the sign of zero: the resize adds +0 to a negated 0.)
    const values = (p: { data: Float32Array }) => Array.from(p.data, (v) => v + 0);
    assert.deepEqual(values(sketchAtOutput(sketch, { ...s, height: 40 })), values(fitLetterbox(model, 40, 64).image), 'the skipped resize is the identity');
    assert.deepEqual(sketchAtOutput(sketch, { ...s, preprocessor: 'none', height: 40 }), sketch, 'already white on black');
  });
});

describe('shot QA in the worker', () => {
  let f: TestFarm;
  let bus: EventBus;
  const events: FarmEvents = { publish: (type, ref, data) => bus.publish(type, ref, data) };
  before(async () => {
    f = await startTestFarm(`qa${process.pid}`, { events });
    bus = new EventBus(f.records, f.prefix);
  });
  after(() => f.stop());

  const vanilla = { mode: 'vanilla', steps: 4, width: SIZE, height: SIZE };
  const attempt = { jobId: 'direct', attempt: 1, attempts: 2, reportProgress: async () => undefined };
  const qaOf = async (shotId: string) => (await f.store.frames(shotId)).map((fr) => fr.qa);

  it('scores every frame, flicker from the second on; the same numbers on a rerun, in any finishing order and in shot.json', async () => {
    const sketches = await sketchPngs(4);
    const { shot } = await submitShot(f, { project: 'qa-scores', settings: vanilla, seed: 5, frames: sketches });
    assert.equal((await waitForShot(f.store, shot.id, ['completed', 'failed'])).state, 'completed');
    const frames = await f.store.frames(shot.id);
    for (const fr of frames) {
      const qa = fr.qa;
      assert.ok(qa, `frame ${fr.frame} has QA`);
      assert.equal(typeof qa.scores.palette, 'number', `frame ${fr.frame} palette`);
      assert.ok(qa.scores.lineFidelity! >= 0 && qa.scores.lineFidelity! <= 1, `frame ${fr.frame} line fidelity`);
      assert.deepEqual(qa.thresholds, { ...DEFAULT_THRESHOLDS }, 'judged against the default thresholds');
      assert.deepEqual(
        qa.flagged,
        QA_SCORES.filter((n) => {
          const v = qa.scores[n];
          return v != null && (n === 'lineFidelity' ? v < qa.thresholds[n]! : v > qa.thresholds[n]!);
        }),
        'flagged names exactly the scores past their thresholds',
      );
      if (fr.frame === 1) {
        assert.deepEqual([qa.scores.flickerMean, qa.scores.flickerShare, qa.flickerMeasuredShare], [null, null, null], 'no previous frame');
      } else {
        assert.equal(typeof qa.scores.flickerMean, 'number', `frame ${fr.frame} flicker`);
        assert.ok(qa.scores.flickerShare! >= 0 && qa.scores.flickerShare! <= 1);
        assert.ok(qa.flickerMeasuredShare! > 0.1, 'most of the frame keeps its line art');
      }
    }
    // The analytic pack colours a circle flat, the same where its lines did not move: no flicker.
    assert.deepEqual(frames.slice(1).map((fr) => fr.qa!.scores.flickerMean), [0, 0, 0]);

    const keys = shotKeys(f.objectPrefix, shot.project, shot.id);
    const manifest = JSON.parse(new TextDecoder().decode((await f.objects.get(keys.manifest))!)) as { frames: Pick<FrameRecord, 'qa'>[] };
    assert.deepEqual(manifest.frames.map((fr) => fr.qa), frames.map((fr) => fr.qa), 'shot.json carries the scores');

    // The same shot again: the same numbers.
    const { shot: rerun } = await submitShot(f, { project: 'qa-scores', settings: vanilla, seed: 5, frames: sketches });
    await waitForShot(f.store, rerun.id, ['completed']);
    assert.deepEqual(await qaOf(rerun.id), frames.map((fr) => fr.qa), 'a rerun scores the same');

    // Frames finishing out of order, on workers that never saw the shot: each pair is scored by
    // the later of its two frames, reading the other back from the store, with the same result.
    const { shot: shuffled } = await stageShot(f, { project: 'qa-scores', settings: vanilla, seed: 5, frames: sketches });
    for (const frame of [4, 2, 1, 3]) {
      assert.equal(await f.freshWorker().renderFrame({ shotId: shuffled.id, project: shuffled.project, frame }, attempt), 'completed');
    }
    assert.deepEqual(await qaOf(shuffled.id), frames.map((fr) => fr.qa), 'the finishing order changes nothing');

    // A pair whose scoring was lost (its worker died after the completion): the frame's job,
    // delivered again, scores it, and only it.
    const three = (await f.store.frame(shuffled.id, 3))!;
    const { flickerMean: _m, flickerShare: _s, ...rest } = three.qa!.scores;
    await f.store.setFrame(shuffled.id, 3, { qa: { ...three.qa!, scores: rest, flickerMeasuredShare: undefined } });
    assert.equal(await f.freshWorker().renderFrame({ shotId: shuffled.id, project: shuffled.project, frame: 3 }, attempt), 'completed');
    assert.deepEqual((await f.store.frame(shuffled.id, 3))!.qa, three.qa, 'scored again, the same');
  });

  it('flags a frame past a threshold: frame.flagged once, counted once per reason', async () => {
    // Lines of 6 px the analytic pack keeps; lines of 2 px it loses (it inks whole latent cells).
    const [bold, thin] = await Promise.all([6, 2].map((stroke) => encodePng(sketchFrame(SIZE, SIZE, 1, 3, stroke).image)));
    const project = 'qa-flag';
    const { shot } = await submitShot(f, { project, settings: vanilla, seed: 9, frames: [bold!, bold!, thin!] });
    await waitForShot(f.store, shot.id, ['completed']);
    const frames = await f.store.frames(shot.id);
    assert.deepEqual(frames.map((fr) => fr.qa!.flagged), [[], [], ['lineFidelity']], JSON.stringify(frames.map((fr) => fr.qa!.scores)));
    assert.equal(frames[2]!.qa!.scores.lineFidelity, 0, 'none of its lines survive');

    const flaggedEvents = async () => (await bus.recent(project)).filter((e: FarmEvent) => e.type === 'frame.flagged');
    const [event] = await flaggedEvents();
    assert.ok(event, 'frame.flagged published');
    assert.equal(event.frame, 3);
    assert.equal(event.shotId, shot.id);
    assert.deepEqual(event.data.flagged, ['lineFidelity']);
    // The scores known when it was first flagged (its flicker too, unless frame 2 finished after it).
    const { palette, lineFidelity } = frames[2]!.qa!.scores;
    assert.deepEqual(event.data.scores, { ...(event.data.scores as object), palette, lineFidelity });
    assert.equal(event.data.output, frames[2]!.output);
    const counted = async () => (await f.metrics.framesFlagged.get()).values.filter((v) => v.labels.project === project);
    assert.deepEqual((await counted()).map((v) => [v.labels.reason, v.value]), [['lineFidelity', 1]]);

    // Its job again (at-least-once delivery): nothing new published or counted.
    assert.equal(await f.freshWorker().renderFrame({ shotId: shot.id, project, frame: 3 }, attempt), 'completed');
    assert.equal((await flaggedEvents()).length, 1, 'frame.flagged once');
    assert.deepEqual((await counted()).map((v) => [v.labels.reason, v.value]), [['lineFidelity', 1]]);
  });

  it('an approval made against another take of the frame before stands only while the pair is not past a flicker threshold', async () => {
    const sketches = await sketchPngs(3);
    const { shot } = await stageShot(f, { project: 'qa-approve', settings: vanilla, seed: 4, frames: sketches });
    for (const frame of [1, 2, 3]) assert.equal(await f.freshWorker().renderFrame({ shotId: shot.id, project: shot.project, frame }, attempt), 'completed');
    const review = { state: 'approved' as const, at: '2026-12-01T00:00:00.000Z', by: 'key_1' };
    const [one, two] = await f.store.frames(shot.id);
    // Frames 2 and 3 approved; frame 1 gets a new take whose colours differ (its output object
    // replaced: a grey frame), and frame 2's flicker is cleared as a re-render of frame 1 does.
    const grey = planar(3, SIZE, SIZE);
    await f.objects.put(one!.output!, await encodePng(grey), 'image/png');
    for (const frame of [2, 3]) await f.store.setFrame(shot.id, frame, { review });
    const { flickerMean: _m, flickerShare: _s, ...rest } = two!.qa!.scores;
    await f.store.setFrame(shot.id, 2, { qa: { ...two!.qa!, scores: rest, flagged: [], flickerMeasuredShare: undefined } });
    // Frame 2's job again scores the pair (1, 2) against that take: past the threshold.
    assert.equal(await f.freshWorker().renderFrame({ shotId: shot.id, project: shot.project, frame: 2 }, attempt), 'completed');
    const [, after2, after3] = await f.store.frames(shot.id);
    assert.ok(after2!.qa!.scores.flickerMean! > DEFAULT_THRESHOLDS.flickerMean, `flicker ${after2!.qa!.scores.flickerMean}`);
    assert.deepEqual([after2!.qa!.flagged.includes('flickerMean'), after2!.review], [true, undefined], 'frame 2 needs review again');
    assert.deepEqual(after3!.review, review, 'frame 3, whose pair did not change, stays approved');
  });

  it('scores cropped frames of different shapes (inside the cropped sketch mask); their flicker is null', async () => {
    const frames = await Promise.all([SIZE, SIZE * 0.75].map((h) => encodePng(sketchFrame(SIZE, h, 0, 1, 6).image)));
    const settings = { mode: 'full', steps: 4, guidanceScale: 1, width: SIZE, height: SIZE, crop: true };
    const { shot } = await stageShot(f, { project: 'qa-crop', settings, frames });
    for (const frame of [2, 1]) assert.equal(await f.freshWorker().renderFrame({ shotId: shot.id, project: shot.project, frame }, attempt), 'completed');
    const [one, two] = await f.store.frames(shot.id);
    assert.ok(await f.objects.head(shotKeys(f.objectPrefix, shot.project, shot.id).sketchMask(2)), 'a masked mode');
    assert.deepEqual([(await decodePng((await f.objects.get(two!.output!))!)).height, (await decodePng((await f.objects.get(one!.output!))!)).height], [SIZE * 0.75, SIZE]);
    assert.equal(typeof two!.qa!.scores.palette, 'number');
    assert.equal(typeof two!.qa!.scores.lineFidelity, 'number');
    assert.deepEqual([one!.qa!.scores.flickerMean, two!.qa!.scores.flickerMean, two!.qa!.scores.flickerShare], [null, null, null]);
  });

  it('judges against the configured thresholds', async () => {
    const strict = f.freshWorker({ qa: { thresholds: { palette: 0, lineFidelity: 0 } } });
    const { shot } = await stageShot(f, { project: 'qa-strict', settings: vanilla, frames: await sketchPngs(2) });
    for (const frame of [1, 2]) await strict.renderFrame({ shotId: shot.id, project: shot.project, frame }, attempt);
    const frames = await f.store.frames(shot.id);
    assert.deepEqual(frames.map((fr) => [fr.qa!.thresholds.palette, fr.qa!.thresholds.lineFidelity, fr.qa!.flagged]), [
      [0, 0, ['palette']],
      [0, 0, ['palette']],
    ]);
  });
});
