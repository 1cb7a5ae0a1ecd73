/**
 * {@link FarmWorker}: what one worker does for a shot, over ports (shot records, object store,
 * queues, the pipeline host) — {@link PrepareShot} its reference context, {@link RenderFrame}
 * its frames, {@link FinalizeShot} its outcome — and the follow-ups of queue events no
 * processor sees ({@link FrameFate}). The BullMQ processors are thin adapters over these
 * methods; errors leave here unchanged so the queue can retry them, and bad input is recorded
 * before it is thrown.
 */
import type { FarmQueues, JobData, ShotState, ShotStore } from '@celfarm/jobs';
import type { FarmMetrics } from '@celfarm/metrics';
import type { PackManifest, PipelineHost } from '@celfarm/pipeline';
import type { QaOptions } from '@celfarm/qa';
import type { ObjectStore } from '@celfarm/storage';
import type { Attempt, FrameAttempt } from './attempt.ts';
import type { FarmEvents } from './farm-events.ts';
import { FinalizeShot } from './finalize-shot.ts';
import { FrameFate } from './frame-fate.ts';
import { PrepareShot } from './prepare-shot.ts';
import type { ReferenceContexts } from './reference-contexts.ts';
import { RenderFrame, type FrameOutcome } from './render-frame.ts';
import { ShotContexts } from './shot-contexts.ts';
import { WorkerStatus } from './worker-status.ts';

export type { Attempt, FrameAttempt } from './attempt.ts';
export type { FarmEvents } from './farm-events.ts';
export type { FrameOutcome } from './render-frame.ts';

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
  /** Farm events (shot.started, frame.completed/failed/flagged, shot.completed/failed); default: none. */
  events?: FarmEvents;
  /** Shot QA scoring options and review thresholds (libs/qa); default: its defaults. */
  qa?: QaOptions;
}

export class FarmWorker {
  readonly contexts: ReferenceContexts;
  /** Frame records whose job moved on without a processor to record it (see frame-fate.ts). */
  readonly fate: FrameFate;
  private readonly activity = new WorkerStatus();
  private readonly prepare: PrepareShot;
  private readonly render: RenderFrame;
  private readonly finalize: FinalizeShot;

  constructor(opts: FarmWorkerOptions) {
    const { store, objects, queues, metrics, events, objectPrefix } = opts;
    const log = opts.log ?? ((line: string) => console.log(line));
    const shotContexts = new ShotContexts({ ...opts, capacity: opts.contextCacheSize });
    this.contexts = shotContexts.cache;
    this.fate = new FrameFate({ store, queues, metrics, events, log });
    this.prepare = new PrepareShot({ store, queues, contexts: shotContexts, manifest: opts.manifest, status: this.activity, events });
    this.render = new RenderFrame({
      ...opts,
      contexts: shotContexts,
      clock: opts.clock ?? (() => new Date()),
      log,
      status: this.activity,
    });
    this.finalize = new FinalizeShot({ store, objects, fate: this.fate, objectPrefix, log, events });
  }

  /** For the registry heartbeat: the jobs in progress and the frames rendered so far. */
  status(): { currentJob: string | null; framesDone: number } {
    return this.activity.snapshot();
  }

  /** prepare: see {@link PrepareShot}. */
  prepareShot(ref: JobData<'prepare'>, attempt: Attempt): Promise<ShotState> {
    return this.prepare.run(ref, attempt);
  }

  /** frame: see {@link RenderFrame}. */
  renderFrame(ref: JobData<'frame'>, attempt: FrameAttempt): Promise<FrameOutcome> {
    return this.render.run(ref, attempt);
  }

  /** finalize: see {@link FinalizeShot}. */
  finalizeShot(ref: JobData<'finalize'>): Promise<ShotState> {
    return this.finalize.run(ref);
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

  /** After BullMQ failed a prepare job it never ran: see {@link PrepareShot.jobFailed}. */
  prepareJobFailed(ref: JobData<'prepare'>, reason: string): Promise<void> {
    return this.prepare.jobFailed(ref, reason);
  }
}
