/**
 * {@link FarmWorker}: what one worker does for a shot — prepare its reference context, render
 * its frames, decide its outcome — over ports (shot records, object store, queues, the pipeline
 * host). The BullMQ processors are thin adapters over these three methods; errors leave here
 * unchanged so the queue can retry them, and bad input is recorded before it is thrown.
 */
import {
  FRAME_STATES,
  frameSeed,
  STALLED_OUT_REASON,
  StateConflictError,
  WORKER_LOST,
  type ErrorInfo,
  type EventType,
  type FarmQueues,
  type FrameRecord,
  type JobData,
  type ShotRecord,
  type ShotState,
  type ShotStore,
} from '@celfarm/jobs';
import type { FarmMetrics, FrameStage } from '@celfarm/metrics';
import {
  encodePng,
  encodeWebpPreview,
  PipelineError,
  referenceContextKey,
  resolveSettings,
  type PackManifest,
  type PipelineHost,
  type Progress,
} from '@celfarm/pipeline';
import { shotKeys, type ObjectStore, type ShotKeys } from '@celfarm/storage';
import { errorInfo, isBadInput, isStoreUnavailable, ShotNotFoundError } from './errors.ts';
import { FrameFate } from './frame-fate.ts';
import { FrameWatch } from './frame-watch.ts';
import { encodeMaskPng, readInputImage, type InputImage } from './images.ts';
import { canonicalJson, shotManifest } from './lineage.ts';
import { referenceMaskOf, ReferenceContexts, type ContextInputs, type ObtainedContext } from './reference-contexts.ts';

/** One delivery of a queue job. */
export interface Attempt {
  /** Queue job id (for the registry's `currentJob`). */
  jobId: string;
  /** This attempt, 1-based. */
  attempt: number;
  /** Attempts the queue allows in all; the last one records a transient failure as final. */
  attempts: number;
  /** Aborts the job from outside (not a shot cancellation: such an abort is retried). */
  signal?: AbortSignal;
}

export interface FrameAttempt extends Attempt {
  /** Publishes progress on the queue job (BullMQ `job.updateProgress`). */
  reportProgress(p: Progress): Promise<void>;
}

export type FrameOutcome = 'completed' | 'cancelled';

/**
 * Where farm events go: the event bus (its outbox feeds the API's webhook dispatcher). The bus
 * publishes an event id once, so a frame that runs twice still yields one `frame.completed`.
 */
export interface FarmEvents {
  publish(type: EventType, ref: { project: string; shotId: string; frame?: number; round?: number }, data?: Record<string, unknown>): Promise<unknown>;
}

export interface FarmWorkerOptions {
  /** This worker's id, written on the frames it renders. */
  workerId: string;
  store: ShotStore;
  objects: ObjectStore;
  queues: Pick<FarmQueues, 'addFrameFlow' | 'frameJob'>;
  host: Pick<PipelineHost, 'prepare' | 'frame'>;
  /** The manifest of the pack the host serves (context keys are computed from it). */
  manifest: PackManifest;
  metrics: FarmMetrics;
  /** Object key prefix (S3_PREFIX). */
  objectPrefix: string;
  /** Largest accepted input image, width × height (MAX_PIXELS). */
  maxPixels: number;
  /** Default: the system clock. */
  clock?: () => Date;
  /** One line per finished frame; default console.log. */
  log?: (line: string) => void;
  /** Reference contexts kept in memory (default 4). */
  contextCacheSize?: number;
  /** Milliseconds between shot-state checks while a frame runs (default 500). */
  cancelCheckMs?: number;
  /** Least milliseconds between progress writes per frame (default 100). */
  progressIntervalMs?: number;
  /** Farm events (shot.started, frame.completed/failed, shot.completed/failed); default: none. */
  events?: FarmEvents;
}

const MAX_LISTED_FAILURES = 5;

export class FarmWorker {
  readonly contexts: ReferenceContexts;
  /** Frame records whose job moved on without a processor to record it (see frame-fate.ts). */
  readonly fate: FrameFate;
  private readonly clock: () => Date;
  private readonly log: (line: string) => void;
  private readonly active = new Set<string>();
  private framesDone = 0;

  constructor(private readonly opts: FarmWorkerOptions) {
    this.clock = opts.clock ?? (() => new Date());
    this.log = opts.log ?? ((line) => console.log(line));
    this.contexts = new ReferenceContexts({
      objects: opts.objects,
      host: opts.host,
      prefix: opts.objectPrefix,
      metrics: opts.metrics,
      capacity: opts.contextCacheSize,
    });
    this.fate = new FrameFate({ store: opts.store, queues: opts.queues, metrics: opts.metrics, events: opts.events, log: this.log });
  }

  /** For the registry heartbeat: the jobs in progress and the frames rendered so far. */
  status(): { currentJob: string | null; framesDone: number } {
    return { currentJob: this.active.size ? [...this.active].sort().join(',') : null, framesDone: this.framesDone };
  }

  /**
   * prepare: reference (+ background) → ReferenceContext (memory → store → build), lineage
   * hashes and context key on the shot, shot `running`, then the frame flow. A redelivered job
   * for a shot already running only makes sure its flow exists.
   */
  async prepareShot(ref: JobData<'prepare'>, attempt: Attempt): Promise<ShotState> {
    const shot = await this.shot(ref.shotId);
    if (shot.state === 'running') {
      await this.addFrameFlow(shot);
      await this.publishStarted(shot, { state: 'running', frameCount: shot.frameCount });
      return shot.state;
    }
    if (shot.state !== 'queued' && shot.state !== 'preparing') return shot.state;
    const lineage: Partial<ShotRecord> = {};
    this.active.add(attempt.jobId);
    try {
      await this.opts.store.update(shot.id, { state: 'preparing' }, { from: ['queued', 'preparing'] });
      this.checkPack(shot);
      const images = await this.referenceImages(shot, lineage);
      const key = this.contextKeyOf(shot, images);
      const ctx = await this.contexts.obtain(key, async () => this.contextInputs(shot, images));
      this.countBuild(shot, ctx);
      await this.storeReferenceMask(shot, ctx);
      const running = await this.opts.store.update(
        shot.id,
        { ...lineage, state: 'running', contextKey: ctx.key, error: undefined },
        { from: ['preparing'] },
      );
      await this.addFrameFlow(running ?? shot);
      await this.publishStarted(shot, { state: 'running', frameCount: shot.frameCount, contextKey: ctx.key });
      return 'running';
    } catch (e) {
      if (e instanceof StateConflictError && (await this.opts.store.get(shot.id))?.state === 'cancelled') return 'cancelled';
      // An unreachable store is waited for (the job goes back to the queue), never the shot's end.
      if (!isStoreUnavailable(e) && (isBadInput(e) || attempt.attempt >= attempt.attempts)) await this.failShot(shot, { ...lineage, error: errorInfo(e) });
      throw e;
    } finally {
      this.active.delete(attempt.jobId);
    }
  }

  /**
   * frame: context + sketch → host → output PNG (and sketch mask) at their deterministic keys.
   * Bad input fails the frame and is rethrown; a transient error leaves the frame `waiting`
   * while attempts remain and is rethrown for the queue to retry (an unreachable store always
   * leaves it waiting: such a job goes back to the queue without spending an attempt); the
   * shot's cancellation stops the frame at the next sampler step and ends the job normally.
   */
  async renderFrame(ref: JobData<'frame'>, attempt: FrameAttempt): Promise<FrameOutcome> {
    const shot = await this.shot(ref.shotId);
    const { frame } = ref;
    if (shot.state === 'cancelled') return this.frameCancelled(shot, frame, {});
    const started = await this.opts.store.setFrame(shot.id, frame, (cur) => ({
      state: 'active',
      attempts: cur.attempts + 1,
      worker: this.opts.workerId,
      stage: undefined,
      step: undefined,
      steps: undefined,
    }));
    if (!started) throw new ShotNotFoundError(`shot ${shot.id} has no frame ${frame}`);
    this.active.add(attempt.jobId);
    const watch = new FrameWatch({
      clock: this.clock,
      progressIntervalMs: this.opts.progressIntervalMs,
      cancelCheckMs: this.opts.cancelCheckMs,
      signal: attempt.signal,
      isCancelled: async () => (await this.opts.store.get(shot.id))?.state === 'cancelled',
      write: async (p) => {
        await Promise.all([attempt.reportProgress(p), this.opts.store.setProgress(shot.id, frame, p)]);
      },
    });
    const lineage: Partial<FrameRecord> = {};
    try {
      return await this.render(shot, frame, watch, lineage);
    } catch (e) {
      return await this.frameFailed(shot, frame, e, attempt, watch, lineage);
    } finally {
      await watch.stop();
      this.active.delete(attempt.jobId);
    }
  }

  private async render(shot: ShotRecord, frame: number, watch: FrameWatch, lineage: Partial<FrameRecord>): Promise<FrameOutcome> {
    const { objects, store, metrics } = this.opts;
    const keys = this.keys(shot);
    const context = await this.contextFor(shot);
    this.countBuild(shot, context);
    const field = `frames[${frame - 1}]`;
    const sketchKey = shot.inputs.frames[frame - 1];
    if (!sketchKey) throw new PipelineError('MISSING_INPUT', `the shot has no sketch for frame ${frame}`, field);
    let t = this.clock().getTime();
    const sketch = await readInputImage(objects, sketchKey, field, this.opts.maxPixels, (sha) => (lineage.sketchSha256 = sha));
    const decodeSeconds = this.since(t);
    const settings = { ...shot.settings, seed: frameSeed(shot.seed, frame) };
    // Waits here while the other prefetched frame holds the inference thread; that wait is not
    // this frame's work, so `seconds` below sums the host's own timings instead of wall time.
    const out = await this.opts.host.frame(context.bytes, sketch.image, settings, { onProgress: watch.onProgress, signal: watch.signal });
    t = this.clock().getTime();
    // Preview and mask first, the output last, the record after: an output object implies its
    // preview, a completed record implies both, and a rerun (at-least-once) rewrites all three
    // with the same bytes. A worker that dies in between leaves the record unfinished and the
    // frame is rendered again.
    await objects.put(keys.preview(frame), await encodeWebpPreview(out.images[0]!), 'image/webp');
    if (out.sketchMask) await objects.put(keys.sketchMask(frame), await encodeMaskPng(out.sketchMask), 'image/png');
    await objects.put(keys.output(frame), await encodePng(out.images[0]!), 'image/png');
    const uploadSeconds = this.since(t);
    const inferenceSeconds = Object.values(out.timings).reduce((a, s) => a + (s ?? 0), 0);
    const seconds = decodeSeconds + inferenceSeconds + uploadSeconds;
    await store.setFrame(shot.id, frame, { ...lineage, state: 'completed', output: keys.output(frame), seconds, error: undefined });
    await this.publish('frame.completed', shot, frame, { output: keys.output(frame), seconds, seed: settings.seed });

    const stages: Partial<Record<FrameStage, number>> = {
      decode: decodeSeconds, // S3 fetch + decode of the sketch, on this thread
      mask: out.timings.mask,
      encode: out.timings.encode,
      sample: out.timings.sample,
      decode_vae: out.timings.decode,
      upload: uploadSeconds, // PNG encode + PUT of the output and mask
    };
    for (const [stage, s] of Object.entries(stages)) if (s !== undefined) metrics.frameStage.observe({ stage }, s);
    const steps = watch.last?.steps;
    if (steps && out.timings.sample !== undefined) metrics.samplerStep.observe(out.timings.sample / steps);
    metrics.frames.inc({ outcome: 'completed' });
    metrics.busySeconds.inc({ project: shot.project }, inferenceSeconds);
    this.framesDone++;
    this.log(`frame shot=${shot.id} frame=${frame} seconds=${seconds.toFixed(3)}`);
    return 'completed';
  }

  private async frameFailed(
    shot: ShotRecord,
    frame: number,
    e: unknown,
    attempt: Attempt,
    watch: FrameWatch,
    lineage: Partial<FrameRecord>,
  ): Promise<FrameOutcome> {
    if (e instanceof PipelineError && e.code === 'CANCELLED' && watch.shotCancelled) {
      const p = watch.last;
      return this.frameCancelled(shot, frame, { ...lineage, stage: p?.stage, step: p?.step, steps: p?.steps });
    }
    const error = errorInfo(e);
    const final = !isStoreUnavailable(e) && (isBadInput(e) || attempt.attempt >= attempt.attempts);
    await this.opts.store.setFrame(shot.id, frame, { ...lineage, state: final ? 'failed' : 'waiting', error });
    if (final) {
      this.opts.metrics.frames.inc({ outcome: 'failed', reason: error.code });
      await this.publish('frame.failed', shot, frame, { error, attempts: attempt.attempt });
    }
    throw e;
  }

  private async frameCancelled(shot: ShotRecord, frame: number, patch: Partial<FrameRecord>): Promise<FrameOutcome> {
    const r = await this.opts.store.setFrame(shot.id, frame, { ...patch, state: 'cancelled' }, ['waiting', 'active']);
    if (r) this.opts.metrics.frames.inc({ outcome: 'cancelled', reason: 'CANCELLED' });
    return 'cancelled';
  }

  /**
   * finalize (after every frame of the round finished): first every frame record still
   * unfinished is brought in line with its job (a frame whose worker died and whose job BullMQ
   * failed is recorded failed, with frame.failed); then the shot is `failed` when the failed
   * share exceeds its allowance, else `completed` (a cancelled shot stays cancelled); then
   * shot.json, then the final event. Idempotent: the queue retries it until it has done all of
   * it, and a rerun rewrites the same shot.json and publishes nothing twice. A finalize of an
   * earlier round (the shot was retried since) changes nothing.
   */
  async finalizeShot(ref: JobData<'finalize'>): Promise<ShotState> {
    let shot = await this.shot(ref.shotId);
    // Jobs queued before payloads carried their round have none: they belong to the shot's round.
    if (ref.round !== undefined && ref.round !== shot.round) {
      this.log(`finalize shot=${shot.id} round=${ref.round}: the shot is in round ${shot.round}; nothing to do`);
      return shot.state;
    }
    for (const f of await this.opts.store.frames(shot.id)) {
      if (f.state === 'waiting' || f.state === 'active') await this.fate.reconcile(shot.id, f.frame, shot.round);
    }
    const frames = await this.opts.store.frames(shot.id);
    if (shot.state !== 'cancelled') {
      const failed = frames.filter((f) => f.state !== 'completed');
      // Counted against frameCount, so a frame record that went missing counts as failed.
      const failedCount = shot.frameCount - (frames.length - failed.length);
      const state: ShotState = failedCount / Math.max(1, shot.frameCount) > shot.failedFrameShare ? 'failed' : 'completed';
      const error = state === 'failed' ? failureSummary(shot, failed, failedCount) : undefined;
      try {
        shot = (await this.opts.store.update(shot.id, { state, error })) ?? shot;
      } catch (e) {
        if (!(e instanceof StateConflictError)) throw e;
        shot = await this.shot(shot.id);
        if (shot.state !== 'cancelled') throw e;
      }
    }
    const manifest = canonicalJson(shotManifest(shot, frames));
    await this.opts.objects.put(this.keys(shot).manifest, new TextEncoder().encode(manifest), 'application/json');
    // After shot.json, so a receiver of the event can read it.
    if (shot.state === 'completed' || shot.state === 'failed') {
      await this.publish(`shot.${shot.state}`, shot, undefined, { counts: frameCounts(frames), ...(shot.error ? { error: shot.error } : {}) });
    }
    return shot.state;
  }

  /**
   * After BullMQ failed a frame job, for any reason and in whichever process: the record must say
   * so. The processor records its own failures; this covers the failures it never saw — above
   * all a job failed for stalling more than FRAME_STALL_LIMIT, which no processor runs for.
   */
  async frameJobFailed(ref: JobData<'frame'>): Promise<void> {
    await this.fate.reconcile(ref.shotId, ref.frame, ref.round);
  }

  /** After the stalled-job check handed a frame job back to the queue: its record is `waiting` again. */
  async frameJobStalled(ref: JobData<'frame'>): Promise<void> {
    await this.fate.reconcile(ref.shotId, ref.frame, ref.round);
  }

  /**
   * After BullMQ failed a prepare job it never ran (stalled more than FRAME_STALL_LIMIT): the
   * shot fails with WORKER_LOST, retryable by submitting again. Failures the processor saw are
   * recorded by it.
   */
  async prepareJobFailed(ref: JobData<'prepare'>, reason: string): Promise<void> {
    if (!reason.includes(STALLED_OUT_REASON)) return;
    const shot = await this.opts.store.get(ref.shotId);
    if (!shot || (shot.state !== 'queued' && shot.state !== 'preparing')) return;
    await this.failShot(shot, { error: { code: WORKER_LOST, message: 'preparing the shot lost its worker (killed, or its lock expired) more often than FRAME_STALL_LIMIT allows' } });
  }

  private async shot(id: string): Promise<ShotRecord> {
    const shot = await this.opts.store.get(id);
    if (!shot) throw new ShotNotFoundError(`shot ${id} does not exist`);
    return shot;
  }

  private keys(shot: ShotRecord): ShotKeys {
    return shotKeys(this.opts.objectPrefix, shot.project, shot.id);
  }

  private since(ms: number): number {
    return (this.clock().getTime() - ms) / 1000;
  }

  private checkPack(shot: ShotRecord): void {
    const { id, version } = this.opts.manifest;
    if (shot.pack.id !== id || shot.pack.version !== version) {
      throw new PipelineError('PACK_INVALID', `the shot asks for pack ${shot.pack.id}@${shot.pack.version}; this worker serves ${id}@${version}`, 'pack');
    }
  }

  /** The settings the reference context is built with: the shot's, with its base seed. */
  private contextSettings(shot: ShotRecord): Record<string, unknown> {
    return { ...shot.settings, seed: shot.seed };
  }

  private async referenceImages(shot: ShotRecord, lineage: Partial<ShotRecord> = {}): Promise<{ reference: InputImage; background?: InputImage }> {
    const { objects } = this.opts;
    const max = this.opts.maxPixels;
    const reference = await readInputImage(objects, shot.inputs.reference, 'reference', max, (sha) => (lineage.referenceSha256 = sha));
    const bgKey = shot.inputs.background;
    const background = bgKey ? await readInputImage(objects, bgKey, 'background', max, (sha) => (lineage.backgroundSha256 = sha)) : undefined;
    return { reference, background };
  }

  /** Computed here, before any build, so a context in the store is found without the host. */
  private contextKeyOf(shot: ShotRecord, images: { reference: InputImage; background?: InputImage }): string {
    const settings = resolveSettings(this.contextSettings(shot), this.opts.manifest);
    return referenceContextKey(this.opts.manifest, settings, { reference: images.reference.image, background: images.background?.image });
  }

  private contextInputs(shot: ShotRecord, images: { reference: InputImage; background?: InputImage }): ContextInputs {
    return { reference: images.reference.image, background: images.background?.image, settings: this.contextSettings(shot) };
  }

  /** A frame's context: by the shot's key from memory or the store, rebuilt from its inputs when gone. */
  private async contextFor(shot: ShotRecord): Promise<ObtainedContext> {
    const load = async () => this.contextInputs(shot, await this.referenceImages(shot));
    if (shot.contextKey) return this.contexts.obtain(shot.contextKey, load);
    const images = await this.referenceImages(shot);
    return this.contexts.obtain(this.contextKeyOf(shot, images), async () => this.contextInputs(shot, images));
  }

  private countBuild(shot: ShotRecord, ctx: ObtainedContext): void {
    if (ctx.built) this.opts.metrics.busySeconds.inc({ project: shot.project }, ctx.built.seconds);
  }

  private async storeReferenceMask(shot: ShotRecord, ctx: ObtainedContext): Promise<void> {
    const mask = ctx.built ? ctx.built.referenceMask : referenceMaskOf(ctx.bytes);
    if (mask) await this.opts.objects.put(this.keys(shot).referenceMask, await encodeMaskPng(mask), 'image/png');
  }

  private async addFrameFlow(shot: ShotRecord): Promise<void> {
    const frames = Array.from({ length: shot.frameCount }, (_, i) => i + 1);
    await this.opts.queues.addFrameFlow({ shotId: shot.id, project: shot.project }, frames, shot.priority, shot.round);
  }

  private async failShot(shot: ShotRecord, patch: Partial<ShotRecord>): Promise<void> {
    try {
      await this.opts.store.update(shot.id, { ...patch, state: 'failed' });
    } catch (e) {
      // Cancelled meanwhile: the user's decision stands.
      if (!(e instanceof StateConflictError)) throw e;
      return;
    }
    // Prepare failed: the shot never reaches finalize, so its outcome is told here.
    await this.publish('shot.failed', shot, undefined, { counts: frameCounts(await this.opts.store.frames(shot.id)), ...(patch.error ? { error: patch.error } : {}) });
  }

  /**
   * shot.started, with shot.created guaranteed to go out first: the API publishes shot.created
   * after queueing prepare, so a fast worker could otherwise start the shot before it is
   * announced. Publication is once per event id, so this only fills that gap, with the same
   * payload the API sends.
   */
  private async publishStarted(shot: ShotRecord, data: Record<string, unknown>): Promise<void> {
    if (shot.round === 0) {
      await this.publish('shot.created', shot, undefined, { state: 'queued', frameCount: shot.frameCount, priority: shot.priority, awaitingUploads: false });
    }
    await this.publish('shot.started', shot, undefined, data);
  }

  private async publish(type: EventType, shot: ShotRecord, frame: number | undefined, data: Record<string, unknown>): Promise<void> {
    await this.opts.events?.publish(type, { project: shot.project, shotId: shot.id, round: shot.round, ...(frame !== undefined ? { frame } : {}) }, data);
  }
}

function frameCounts(frames: FrameRecord[]): Record<string, number> {
  const counts: Record<string, number> = Object.fromEntries(FRAME_STATES.map((s) => [s, 0]));
  for (const f of frames) counts[f.state] = (counts[f.state] ?? 0) + 1;
  return counts;
}

function failureSummary(shot: ShotRecord, failed: FrameRecord[], count: number): ErrorInfo {
  const listed = failed.slice(0, MAX_LISTED_FAILURES).map((f) => {
    const why = f.error ? `${f.error.code}${f.error.field ? ` (${f.error.field})` : ''}: ${f.error.message}` : f.state;
    return `frame ${f.frame} ${why}`;
  });
  const more = failed.length > MAX_LISTED_FAILURES ? `; and ${failed.length - MAX_LISTED_FAILURES} more` : '';
  return {
    code: 'FRAMES_FAILED',
    message: `${count} of ${shot.frameCount} frames failed (allowed share ${shot.failedFrameShare}): ${listed.join('; ')}${more}`,
  };
}
