/**
 * The frame job: take the frame (its record `active` on this worker), render it on the inference
 * thread from the shot's reference context and its sketch, store preview, mask and output at
 * their deterministic keys, record it `completed`. Bad input fails the frame and is rethrown; a
 * transient error hands it back to `waiting` while attempts remain and is rethrown for the queue
 * to retry (an unreachable store always hands it back: such a job goes back to the queue without
 * spending an attempt); the shot's cancellation stops the frame at the next sampler step and ends
 * the job normally.
 */
import { FrameTransitionError, frameSeed, namingFile, type FrameRecord, type JobData, type ShotRecord, type ShotStore } from '@celfarm/jobs';
import type { FarmMetrics, FrameStage } from '@celfarm/metrics';
import { encodePng, encodeWebpPreview, PipelineError, type FrameOutput, type PipelineHost } from '@celfarm/pipeline';
import { shotKeys, type ObjectStore } from '@celfarm/storage';
import { isFinalFailure, type FrameAttempt } from './attempt.ts';
import { errorInfo, existingShot, ShotNotFoundError } from './errors.ts';
import { publishAbout, type FarmEvents } from './farm-events.ts';
import { FrameWatch } from './frame-watch.ts';
import { encodeMaskPng, readInputImage } from './images.ts';
import type { ShotContexts } from './shot-contexts.ts';
import type { WorkerStatus } from './worker-status.ts';

/** What a frame job leaves its frame as (a frame it may not take keeps the state it had). */
export type FrameOutcome = 'completed' | 'cancelled' | 'failed';

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
}

export class RenderFrame {
  constructor(private readonly deps: RenderFrameDeps) {}

  async run(ref: JobData<'frame'>, attempt: FrameAttempt): Promise<FrameOutcome> {
    const { store } = this.deps;
    const shot = await existingShot(store, ref.shotId);
    const { frame } = ref;
    if (shot.state === 'cancelled') return this.cancelled(shot, frame, {});
    const taken = await this.take(shot, frame);
    if (typeof taken === 'string') return taken;
    const { fileName } = taken;
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
      try {
        return await this.render(shot, frame, fileName, watch, lineage);
      } catch (e) {
        return await this.failed(shot, frame, fileName, e, attempt, watch, lineage);
      } finally {
        await watch.stop();
      }
    });
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

  private async render(shot: ShotRecord, frame: number, fileName: string | undefined, watch: FrameWatch, lineage: Partial<FrameRecord>): Promise<FrameOutcome> {
    const { objects, store } = this.deps;
    const keys = shotKeys(this.deps.objectPrefix, shot.project, shot.id);
    const context = await this.deps.contexts.forFrame(shot);
    const field = `frames[${frame - 1}]`;
    const sketchKey = shot.inputs.frames[frame - 1];
    if (!sketchKey) throw new PipelineError('MISSING_INPUT', `the shot has no sketch for frame ${frame}`, field);
    let t = this.now();
    const sketch = await readInputImage(objects, sketchKey, field, this.deps.maxPixels, (sha) => (lineage.sketchSha256 = sha));
    const decodeSeconds = this.since(t);
    // The shot's settings as resolved at submit, taken as given; only the seed is the frame's own.
    const settings = { ...shot.settings, seed: frameSeed(shot.seed, frame) };
    // Waits here while the other prefetched frame holds the inference thread; that wait is not
    // this frame's work, so `seconds` below sums the host's own timings instead of wall time.
    const out = await this.deps.host.frame(context.bytes, sketch.image, settings, { onProgress: watch.onProgress, signal: watch.signal });
    t = this.now();
    // Preview and mask first, the output last, the record after: an output object implies its
    // preview, a completed record implies both, and a rerun (at-least-once) rewrites all three
    // with the same bytes. A worker that dies in between leaves the record unfinished and the
    // frame is rendered again. Output and preview are named after the frame's file.
    const output = keys.output(frame, fileName);
    await objects.put(keys.preview(frame, fileName), await encodeWebpPreview(out.images[0]!), 'image/webp');
    if (out.sketchMask) await objects.put(keys.sketchMask(frame), await encodeMaskPng(out.sketchMask), 'image/png');
    await objects.put(output, await encodePng(out.images[0]!), 'image/png');
    const uploadSeconds = this.since(t);
    const inferenceSeconds = Object.values(out.timings).reduce((a, s) => a + (s ?? 0), 0);
    const seconds = decodeSeconds + inferenceSeconds + uploadSeconds;
    // Refused (FrameTransitionError) when the frame was taken from this attempt meanwhile.
    await store.setFrame(shot.id, frame, { ...lineage, state: 'completed', output, seconds, error: undefined });
    await publishAbout(this.deps.events, 'frame.completed', shot, { ...(fileName ? { fileName } : {}), output, seconds, seed: settings.seed }, frame);

    observeFrame(this.deps.metrics, shot, out, { decodeSeconds, uploadSeconds, inferenceSeconds, steps: watch.last?.steps });
    this.deps.status.frameDone();
    this.deps.log(`frame shot=${shot.id} frame=${frame} seconds=${seconds.toFixed(3)}`);
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
    const r = await this.deps.store.setFrame(shot.id, frame, { ...patch, state: 'cancelled' }, ['waiting', 'active']);
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
