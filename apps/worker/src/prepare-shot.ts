/**
 * The prepare job of a shot: its reference context (built once, found by any worker), the input
 * hashes and context key on the shot, the shot `running`, then its frame flow and `shot.started`.
 * A prepare that fails for good fails the shot and says so (`shot.failed`), since such a shot
 * never reaches finalize.
 */
import {
  frameCounts,
  STALLED_OUT_REASON,
  StateConflictError,
  WORKER_LOST,
  type FarmQueues,
  type JobData,
  type ShotRecord,
  type ShotState,
  type ShotStore,
} from '@celfarm/jobs';
import { PipelineError, type PackManifest } from '@celfarm/pipeline';
import { isFinalFailure, type Attempt } from './attempt.ts';
import { errorInfo, existingShot } from './errors.ts';
import { publishAbout, type FarmEvents } from './farm-events.ts';
import type { ShotContexts } from './shot-contexts.ts';
import type { WorkerStatus } from './worker-status.ts';

export interface PrepareShotDeps {
  store: ShotStore;
  queues: Pick<FarmQueues, 'addFrameFlow'>;
  contexts: ShotContexts;
  /** The manifest of the pack this worker serves: a shot asking for another one fails here. */
  manifest: PackManifest;
  status: WorkerStatus;
  events?: FarmEvents;
}

export class PrepareShot {
  constructor(private readonly deps: PrepareShotDeps) {}

  /** Runs one delivery of the job; a redelivered job for a running shot only makes sure its flow exists. */
  async run(ref: JobData<'prepare'>, attempt: Attempt): Promise<ShotState> {
    const { store, contexts } = this.deps;
    const shot = await existingShot(store, ref.shotId);
    if (shot.state === 'running') {
      await this.start(shot, { state: 'running', frameCount: shot.frameCount });
      return shot.state;
    }
    if (shot.state !== 'queued' && shot.state !== 'preparing') return shot.state;
    const lineage: Partial<ShotRecord> = {};
    return this.deps.status.during(attempt.jobId, async () => {
      try {
        await store.update(shot.id, { state: 'preparing' }, { from: ['queued', 'preparing'] });
        this.checkPack(shot);
        const ctx = await contexts.prepare(shot, lineage);
        const running = await store.update(shot.id, { ...lineage, state: 'running', contextKey: ctx.key, error: undefined }, { from: ['preparing'] });
        await this.start(running ?? shot, { state: 'running', frameCount: shot.frameCount, contextKey: ctx.key });
        return 'running';
      } catch (e) {
        if (e instanceof StateConflictError && (await store.get(shot.id))?.state === 'cancelled') return 'cancelled';
        if (isFinalFailure(e, attempt)) await this.failShot(shot, { ...lineage, error: errorInfo(e) });
        throw e;
      }
    });
  }

  /**
   * After BullMQ failed a prepare job it never ran (stalled more than FRAME_STALL_LIMIT): the
   * shot fails with WORKER_LOST, retryable by submitting again. Failures the processor saw are
   * recorded by it.
   */
  async jobFailed(ref: JobData<'prepare'>, reason: string): Promise<void> {
    if (!reason.includes(STALLED_OUT_REASON)) return;
    const shot = await this.deps.store.get(ref.shotId);
    if (!shot || (shot.state !== 'queued' && shot.state !== 'preparing')) return;
    const message = 'preparing the shot lost its worker (killed, or its lock expired) more often than FRAME_STALL_LIMIT allows';
    await this.failShot(shot, { error: { code: WORKER_LOST, message } });
  }

  /** The frame flow (a no-op when it exists), then `shot.started`: `shot.created` went out with the shot itself. */
  private async start(shot: ShotRecord, data: Record<string, unknown>): Promise<void> {
    const frames = Array.from({ length: shot.frameCount }, (_, i) => i + 1);
    await this.deps.queues.addFrameFlow({ shotId: shot.id, project: shot.project }, frames, shot.priority, shot.round);
    await publishAbout(this.deps.events, 'shot.started', shot, data);
  }

  private checkPack(shot: ShotRecord): void {
    const { id, version } = this.deps.manifest;
    if (shot.pack.id !== id || shot.pack.version !== version) {
      throw new PipelineError('PACK_INVALID', `the shot asks for pack ${shot.pack.id}@${shot.pack.version}; this worker serves ${id}@${version}`, 'pack');
    }
  }

  private async failShot(shot: ShotRecord, patch: Partial<ShotRecord>): Promise<void> {
    try {
      await this.deps.store.update(shot.id, { ...patch, state: 'failed' });
    } catch (e) {
      // Cancelled meanwhile: the user's decision stands.
      if (!(e instanceof StateConflictError)) throw e;
      return;
    }
    const counts = frameCounts(await this.deps.store.frames(shot.id));
    await publishAbout(this.deps.events, 'shot.failed', shot, { counts, ...(patch.error ? { error: patch.error } : {}) });
  }
}
