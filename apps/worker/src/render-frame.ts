/**
 * The frame job: take the frame (its record `active` on this worker), render it on the inference
 * thread from the shot's reference context and its sketch, score it (shot QA: palette and line
 * fidelity), store preview, mask and output at their deterministic keys, record it `completed`
 * with its scores, then score the flicker of its pairs with neighbours already completed
 * (frame-qa.ts). Bad input fails the frame and is rethrown; a
 * transient error hands it back to `waiting` while attempts remain and is rethrown for the queue
 * to retry (an unreachable store always hands it back: such a job goes back to the queue without
 * spending an attempt); the shot's cancellation stops the frame at the next sampler step and ends
 * the job normally.
 */
import { cancelledPatch, chainSource, DEFAULT_CHAIN_LINK, FrameTransitionError, namingFile, type FrameQa, type FrameRecord, type JobData, type ShotRecord, type ShotStore } from '@celfarm/jobs';
import type { FarmMetrics, FrameStage } from '@celfarm/metrics';
import { encodePngRgb8, encodeWebpPreview, PipelineError, toRgb8, type FrameOutput, type PipelineHost } from '@celfarm/pipeline';
import { lineMap, lockPalette, type FrameAnalysis, type QaOptions } from '@celfarm/qa';
import { shotKeys, type ObjectStore } from '@celfarm/storage';
import { isFinalFailure, type FrameAttempt } from './attempt.ts';
import { ChainNotReadyError, errorInfo, existingShot, ShotNotFoundError } from './errors.ts';
import { publishAbout, type FarmEvents } from './farm-events.ts';
import { FrameQaScorer, sketchAtOutput, storedOutput, withScores } from './frame-qa.ts';
import { FrameWatch } from './frame-watch.ts';
import { encodeMaskPng, readInputImage } from './images.ts';
import type { ShotContexts } from './shot-contexts.ts';
import type { WorkerStatus } from './worker-status.ts';

/** What a frame job leaves its frame as (a frame it may not take keeps the state it had). */
export type FrameOutcome = 'completed' | 'cancelled' | 'failed';

/** What rendering leaves for the QA that follows the completion. */
interface Rendered {
  /** The frame's QA analysis, which scores its neighbours' flicker without reading it back. */
  analysis?: FrameAnalysis;
  /** Seconds its own scores took (the `qa` stage, with the flicker of its pairs). */
  qaSeconds: number;
  /** Its completed record, and its QA before the completion (a neighbour may have scored its flicker). */
  completed?: { record: FrameRecord; before: FrameQa | undefined };
}

export interface RenderFrameDeps {
  /** Written on the frames this worker takes. */
  workerId: string;
  store: ShotStore;
  objects: ObjectStore;
  host: Pick<PipelineHost, 'frame'>;
  contexts: ShotContexts;
  metrics: FarmMetrics;
  /** Object key prefix (S3_PREFIX). */
  objectPrefix: string;
  /** Largest accepted input image, width × height (MAX_PIXELS). */
  maxPixels: number;
  clock: () => Date;
  log: (line: string) => void;
  status: WorkerStatus;
  events?: FarmEvents;
  /** Milliseconds between shot-state checks while a frame runs (default 500). */
  cancelCheckMs?: number;
  /** Least milliseconds between progress writes per frame (default 100). */
  progressIntervalMs?: number;
  /** Shot QA scoring options and review thresholds (libs/qa); default: its defaults. */
  qa?: QaOptions;
}

export class RenderFrame {
  private readonly qa: FrameQaScorer;

  constructor(private readonly deps: RenderFrameDeps) {
    this.qa = new FrameQaScorer({ ...deps, options: deps.qa });
  }

  async run(ref: JobData<'frame'>, attempt: FrameAttempt): Promise<FrameOutcome> {
    const { store } = this.deps;
    const shot = await existingShot(store, ref.shotId);
    const { frame } = ref;
    if (shot.state === 'cancelled') return this.cancelled(shot, frame, {});
    await this.chainReady(shot, frame);
    const taken = await this.take(shot, frame);
    // Delivered again after it completed: only what may be missing of its QA (a pair whose
    // scoring failed or whose worker died after the completion) is done.
    if (taken === 'completed') {
      // Its worker may have died between recording the frame and announcing it: announce it
      // (event ids are deterministic, so an event already published is not published again).
      await this.announceCompleted(shot, frame);
      await this.qa.pairs(shot, frame);
      // And its `frame.flagged`, after its pairs as on the first run (a no-op when it went out).
      const r = await store.frame(shot.id, frame);
      if (r?.state === 'completed') await this.qa.announce(shot, r);
    }
    if (typeof taken === 'string') return taken;
    const { fileName, seed, take } = taken;
    return this.deps.status.during(attempt.jobId, async () => {
      const watch = new FrameWatch({
        clock: this.deps.clock,
        progressIntervalMs: this.deps.progressIntervalMs,
        cancelCheckMs: this.deps.cancelCheckMs,
        signal: attempt.signal,
        isCancelled: async () => (await store.get(shot.id))?.state === 'cancelled',
        write: async (p) => {
          await Promise.all([attempt.reportProgress(p), store.setProgress(shot.id, frame, p)]);
        },
      });
      const lineage: Partial<FrameRecord> = {};
      const rendered: Rendered = { qaSeconds: 0 };
      let outcome: FrameOutcome;
      try {
        outcome = await this.render(shot, frame, { fileName, seed, take }, watch, lineage, rendered);
      } catch (e) {
        return await this.failed(shot, frame, fileName, e, attempt, watch, lineage);
      } finally {
        await watch.stop();
      }
      // After the completion is recorded and outside the render's failure handling: an error
      // here reaches the queue, whose next delivery finds the frame completed and scores again.
      const t = this.now();
      await this.qa.pairs(shot, frame, rendered.analysis);
      this.deps.metrics.frameStage.observe({ stage: 'qa' }, rendered.qaSeconds + this.since(t));
      // Announced after its pairs, so that `frame.flagged` carries its flicker when it is known.
      if (rendered.completed) await this.qa.recorded(shot, rendered.completed.before, rendered.completed.record);
      return outcome;
    });
  }

  /**
   * With `referenceChain: previous`, ChainNotReadyError (the job waits, delayed) while the frame
   * its link renders from is still to render; a frame that ended otherwise does not hold it up.
   */
  private async chainReady(shot: ShotRecord, frame: number): Promise<void> {
    const c = shot.consistency;
    if (c?.referenceChain !== 'previous') return;
    const source = chainSource(frame, c.chainLink ?? DEFAULT_CHAIN_LINK);
    if (source === null) return;
    const r = await this.deps.store.frame(shot.id, source);
    if (r?.state === 'waiting' || r?.state === 'active') throw new ChainNotReadyError(`frame ${frame} waits for frame ${source}, the reference of its chain link`);
  }

  /**
   * The reference context the frame renders from: the shot's, or with reference chaining the
   * output of the frame its chain names — the nearest approved frame before it (`approved`), or
   * the last completed frame up to its link's source (`previous`) — when there is one.
   */
  private async contextFor(shot: ShotRecord, frame: number, lineage: Partial<FrameRecord>) {
    const chain = shot.consistency?.referenceChain ?? 'off';
    const source = chain === 'previous' ? chainSource(frame, shot.consistency?.chainLink ?? DEFAULT_CHAIN_LINK) : chain === 'approved' ? frame - 1 : null;
    if (source !== null && source >= 1) {
      const link = await this.deps.store.nearestFrame(shot.id, source, -1, shot.frameCount, (f) => f.state === 'completed' && !!f.output && (chain === 'previous' || f.review?.state === 'approved'));
      if (link) {
        try {
          const ctx = await this.deps.contexts.forChainLink(shot, { frame: link.frame, take: link.take, output: link.output! });
          lineage.referenceFrom = { frame: link.frame, take: link.take ?? 0 };
          return ctx;
        } catch (e) {
          // The approved output is gone or unreadable: that is no fault of this frame's.
          if (!(e instanceof PipelineError) || !e.permanent) throw e;
          this.deps.log(`frame shot=${shot.id} frame=${frame}: chain link frame ${link.frame} unreadable (${e.message}); rendering from the shot's reference`);
        }
      }
    }
    return this.deps.contexts.forFrame(shot);
  }

  /** A completed frame's `frame.completed`, published again (a no-op when it went out before). */
  private async announceCompleted(shot: ShotRecord, frame: number): Promise<void> {
    const r = await this.deps.store.frame(shot.id, frame);
    if (r?.state !== 'completed' || !r.output) return;
    const data = { ...(r.fileName ? { fileName: r.fileName } : {}), output: r.output, seconds: r.seconds, seed: r.seed };
    await publishAbout(this.deps.events, 'frame.completed', shot, data, frame);
  }

  /**
   * Takes the frame: `active` on this worker, one attempt more; returns its record. A frame the
   * state machine will not hand over keeps its state, which is returned: one already completed
   * (this job was delivered again after it finished) is not rendered twice; a cancelled or failed
   * one is no longer this job's to run.
   */
  private async take(shot: ShotRecord, frame: number): Promise<FrameRecord | FrameOutcome> {
    const active = { state: 'active', worker: this.deps.workerId, stage: undefined, step: undefined, steps: undefined } as const;
    try {
      const taken = await this.deps.store.setFrame(shot.id, frame, (cur) => ({ ...active, attempts: cur.attempts + 1 }));
      if (!taken) throw new ShotNotFoundError(`shot ${shot.id} has no frame ${frame}`);
      return taken;
    } catch (e) {
      if (!(e instanceof FrameTransitionError) || e.from === 'waiting' || e.from === 'active') throw e;
      this.deps.log(`frame shot=${shot.id} frame=${frame} is ${e.from}; this job leaves it so`);
      return e.from;
    }
  }

  private async render(
    shot: ShotRecord,
    frame: number,
    { fileName, seed, take }: Pick<FrameRecord, 'fileName' | 'seed' | 'take'>,
    watch: FrameWatch,
    lineage: Partial<FrameRecord>,
    rendered: Rendered,
  ): Promise<FrameOutcome> {
    const { objects, store } = this.deps;
    const keys = shotKeys(this.deps.objectPrefix, shot.project, shot.id);
    const context = await this.contextFor(shot, frame, lineage);
    const field = `frames[${frame - 1}]`;
    const sketchKey = shot.inputs.frames[frame - 1];
    if (!sketchKey) throw new PipelineError('MISSING_INPUT', `the shot has no sketch for frame ${frame}`, field);
    let t = this.now();
    const sketch = await readInputImage(objects, sketchKey, field, this.deps.maxPixels, (sha) => (lineage.sketchSha256 = sha));
    const decodeSeconds = this.since(t);
    // The shot's settings as resolved at submit, taken as given; only the seed is the frame's own
    // (base + k − 1 from the submit, or the seed of a re-render: its record has it).
    const settings = { ...shot.settings, seed };
    // Waits here while the other prefetched frame holds the inference thread; that wait is not
    // this frame's work, so `seconds` below sums the host's own timings instead of wall time.
    // For QA, before the sketch's pixels move to the inference thread.
    t = this.now();
    const fitted = sketchAtOutput(sketch.image, shot.settings);
    rendered.qaSeconds = this.since(t);
    const out = await this.deps.host.frame(context.bytes, sketch.image, settings, { onProgress: watch.onProgress, signal: watch.signal });
    let image = out.images[0]!;
    // Consistency: the output's flat colours pulled onto the locked palette, lines and shading
    // kept (libs/qa palette-lock.ts), before anything is stored or scored.
    const lock = shot.consistency?.paletteLock ?? 'off';
    if (lock !== 'off') {
      t = this.now();
      const target = await this.qa.lockTarget(shot, frame, lock).catch((e: unknown) => {
        // An approved frame's output gone or unreadable: lock to the reference instead.
        if (lock === 'reference' || !(e instanceof PipelineError) || !e.permanent) throw e;
        this.deps.log(`frame shot=${shot.id} frame=${frame}: approved frame unreadable for the palette lock (${e.message}); locking to the reference`);
        return this.qa.lockTarget(shot, frame, 'reference');
      });
      image = lockPalette(image, lineMap(fitted, 'light-lines', 0.5), target).image;
      rendered.qaSeconds += this.since(t);
    }
    // The 8-bit pixels of the PNG: QA scores what is stored, as a worker reading it back would.
    const rgb8 = toRgb8(image);
    t = this.now();
    const own = await this.qa.own(shot, frame, { output: storedOutput(rgb8, image.width, image.height), sketch: fitted, sketchMask: out.sketchMask, box: out.box });
    rendered.analysis = own.analysis;
    rendered.qaSeconds += this.since(t);
    t = this.now();
    // Preview and mask first, the output last, the record after: an output object implies its
    // preview, a completed record implies both, and a rerun (at-least-once) rewrites all three
    // with the same bytes. A worker that dies in between leaves the record unfinished and the
    // frame is rendered again. Output and preview are named after the frame's file.
    const output = keys.output(frame, fileName);
    // A late attempt — its lock lost, the frame taken by another worker or handed back for a new
    // take since — writes nothing: a new take's images must not be overwritten by an old seed's.
    const mine = (cur: FrameRecord) => cur.state === 'active' && cur.worker === this.deps.workerId && cur.take === take;
    const now = await store.frame(shot.id, frame);
    if (!now || !mine(now)) throw new FrameTransitionError(shot.id, frame, now?.state ?? 'waiting', 'completed');
    await objects.put(keys.preview(frame, fileName), await encodeWebpPreview(image), 'image/webp');
    if (out.sketchMask) await objects.put(keys.sketchMask(frame), await encodeMaskPng(out.sketchMask), 'image/png');
    await objects.put(output, await encodePngRgb8(rgb8, image.width, image.height), 'image/png');
    const uploadSeconds = this.since(t);
    const inferenceSeconds = Object.values(out.timings).reduce((a, s) => a + (s ?? 0), 0);
    const seconds = decodeSeconds + inferenceSeconds + rendered.qaSeconds + uploadSeconds;
    // Written only while the frame is still this attempt's (else FrameTransitionError, for the
    // queue). The scores merge into those already there: a neighbour may have scored its flicker.
    let before: FrameQa | undefined;
    const completed = await store.setFrame(
      shot.id,
      frame,
      (cur) => {
        before = cur.qa;
        return { ...lineage, state: 'completed', output, seconds, error: undefined, qa: withScores(cur.qa, own.qa) };
      },
      mine,
    );
    if (!completed) {
      const cur = await store.frame(shot.id, frame);
      throw new FrameTransitionError(shot.id, frame, cur?.state ?? 'waiting', 'completed');
    }
    await publishAbout(this.deps.events, 'frame.completed', shot, { ...(fileName ? { fileName } : {}), output, seconds, seed: settings.seed }, frame);
    rendered.completed = { record: completed, before };

    observeFrame(this.deps.metrics, shot, out, { decodeSeconds, uploadSeconds, inferenceSeconds, steps: watch.last?.steps });
    this.deps.status.frameDone();
    const flagged = completed.qa?.flagged.length ? ` flagged=${completed.qa.flagged.join(',')}` : '';
    this.deps.log(`frame shot=${shot.id} frame=${frame} seconds=${seconds.toFixed(3)}${flagged}`);
    return 'completed';
  }

  /**
   * Records a failure — final (`failed`, frame.failed) or not (`waiting`) — while the frame is
   * still this worker's; then rethrows it for the queue. A cancellation of the shot ends the job.
   */
  private async failed(
    shot: ShotRecord,
    frame: number,
    fileName: string | undefined,
    e: unknown,
    attempt: FrameAttempt,
    watch: FrameWatch,
    lineage: Partial<FrameRecord>,
  ): Promise<FrameOutcome> {
    if (e instanceof PipelineError && e.code === 'CANCELLED' && watch.shotCancelled) {
      const p = watch.last;
      return this.cancelled(shot, frame, { ...lineage, stage: p?.stage, step: p?.step, steps: p?.steps });
    }
    // The frame was taken from this attempt (its lock expired): nothing of ours to record.
    if (e instanceof FrameTransitionError) throw e;
    const info = errorInfo(e);
    // An error about the sketch names its file too, `frames[1] (sh010_0002.png): …`.
    const field = `frames[${frame - 1}]`;
    const error = info.field === field ? { ...info, message: namingFile(info.message, field, fileName) } : info;
    const final = isFinalFailure(e, attempt);
    const mine = (cur: FrameRecord) => cur.state === 'active' && cur.worker === this.deps.workerId;
    const written = await this.deps.store.setFrame(shot.id, frame, { ...lineage, state: final ? 'failed' : 'waiting', error }, mine);
    if (final && written) {
      this.deps.metrics.frames.inc({ outcome: 'failed', reason: error.code });
      await publishAbout(this.deps.events, 'frame.failed', shot, { ...(fileName ? { fileName } : {}), error, attempts: attempt.attempt }, frame);
    }
    throw e;
  }

  private async cancelled(shot: ShotRecord, frame: number, patch: Partial<FrameRecord>): Promise<FrameOutcome> {
    const r = await this.deps.store.setFrame(shot.id, frame, (cur) => ({ ...patch, ...cancelledPatch(cur) }), ['waiting', 'active']);
    if (r) this.deps.metrics.frames.inc({ outcome: 'cancelled', reason: 'CANCELLED' });
    return 'cancelled';
  }

  private now(): number {
    return this.deps.clock().getTime();
  }

  private since(ms: number): number {
    return (this.now() - ms) / 1000;
  }
}

/** A completed frame's stage timings, seconds per sampler step, and the project's busy seconds. */
function observeFrame(
  metrics: FarmMetrics,
  shot: ShotRecord,
  out: Pick<FrameOutput, 'timings'>,
  measured: { decodeSeconds: number; uploadSeconds: number; inferenceSeconds: number; steps?: number },
): void {
  const stages: Partial<Record<FrameStage, number>> = {
    decode: measured.decodeSeconds, // S3 fetch + decode of the sketch, on this thread
    mask: out.timings.mask,
    encode: out.timings.encode,
    sample: out.timings.sample,
    decode_vae: out.timings.decode,
    upload: measured.uploadSeconds, // PNG encode + PUT of the output and mask
  };
  for (const [stage, s] of Object.entries(stages)) if (s !== undefined) metrics.frameStage.observe({ stage }, s);
  if (measured.steps && out.timings.sample !== undefined) metrics.samplerStep.observe(out.timings.sample / measured.steps);
  metrics.frames.inc({ outcome: 'completed' });
  metrics.busySeconds.inc({ project: shot.project }, measured.inferenceSeconds);
}
