/**
 * What a studio does to a shot once submitted: cancel it, retry its failed frames, delete it.
 */
import { Inject, Injectable } from '@nestjs/common';
import {
  describeFailures,
  isRetryable,
  shotIdentity,
  StateConflictError,
  TERMINAL_SHOT,
  type FarmQueues,
  type ShotStore,
} from '@celfarm/jobs';
import type { EventPublisher } from '@celfarm/webhooks';
import { ApiError, notFound } from '../core/api-error.ts';
import { mapLimit } from '../core/concurrency.ts';
import { FARM_QUEUES, SHOT_STORE } from '../core/tokens.ts';
import { EVENT_PUBLISHER } from '../webhooks/webhooks.tokens.ts';
import { IO_CONCURRENCY } from './input-checks.ts';
import { ShotAccess } from './shot-access.ts';
import { ShotViews } from './shot-views.ts';
import type { ShotView } from './shots.dto.ts';

@Injectable()
export class ShotLifecycle {
  constructor(
    @Inject(SHOT_STORE) private readonly store: ShotStore,
    @Inject(FARM_QUEUES) private readonly queues: FarmQueues,
    @Inject(EVENT_PUBLISHER) private readonly events: EventPublisher,
    @Inject(ShotAccess) private readonly access: ShotAccess,
    @Inject(ShotViews) private readonly views: ShotViews,
  ) {}

  /**
   * Cancels a shot: pending jobs are removed and waiting frames marked cancelled; active frames
   * stop at their next step (workers poll the shot state). Idempotent on a cancelled shot.
   */
  async cancel(id: string, owner: string): Promise<ShotView> {
    const shot = await this.access.owned(id, owner);
    if (shot.state === 'cancelled') return this.views.of(shot);
    const cancelled = await this.store.update(id, { state: 'cancelled' });
    if (!cancelled) throw notFound('shot', id);
    const numbers = Array.from({ length: shot.frameCount }, (_, i) => i + 1);
    await this.queues.removePending(id, numbers, shot.round);
    const waiting = (await this.store.frames(id)).filter((f) => f.state === 'waiting');
    await mapLimit(waiting, IO_CONCURRENCY, (f) => this.store.setFrame(id, f.frame, { state: 'cancelled' }, ['waiting']));
    await this.events.publish('shot.cancelled', { project: shot.project, shotId: id, round: shot.round }, { ...shotIdentity(shot), state: 'cancelled', previousState: shot.state });
    return this.views.of(cancelled);
  }

  /**
   * Re-runs the failed frames of a finished shot as a new round (job ids carry the round) — those
   * a retry can fix. A frame failed for good (bad input: its error is `permanent`) would fail the
   * same way again, so it stays failed; when only such frames are left, 409 NOT_RETRYABLE names
   * them and their causes, and nothing is queued.
   */
  async retry(id: string, owner: string): Promise<ShotView> {
    const shot = await this.access.owned(id, owner);
    const failed = (await this.store.frames(id)).filter((f) => f.state === 'failed');
    if (failed.length === 0) throw new ApiError(409, 'NOTHING_TO_RETRY', `shot ${id} has no failed frames`);
    if (shot.state !== 'failed' && shot.state !== 'completed') {
      throw new ApiError(409, 'STATE_CONFLICT', `shot ${id} is ${shot.state}; failed frames can be retried once the shot has finished`);
    }
    const retried = failed.filter(isRetryable).map((f) => f.frame);
    if (retried.length === 0) {
      const which = failed.length === 1 ? 'its failed frame' : `all ${failed.length} of its failed frames`;
      throw new ApiError(
        409,
        'NOT_RETRYABLE',
        `shot ${id}: ${which} failed for a reason a retry cannot fix (${describeFailures(failed)}); fix the input and submit it again`,
      );
    }
    const round = shot.round + 1;
    const reopened = await this.store.update(id, { state: 'running', round, error: undefined }, { from: ['failed', 'completed'] });
    if (!reopened) throw notFound('shot', id);
    const again = { state: 'waiting', error: undefined, stage: undefined, step: undefined, steps: undefined, worker: undefined } as const;
    await mapLimit(retried, IO_CONCURRENCY, (frame) => this.store.setFrame(id, frame, again, ['failed']));
    await this.queues.addFrameFlow({ shotId: id, project: shot.project }, retried, shot.priority, round);
    const kept = failed.filter((f) => !isRetryable(f)).map((f) => f.frame);
    await this.events.publish(
      'shot.started',
      { project: shot.project, shotId: id, round },
      { ...shotIdentity(shot), state: 'running', round, frames: retried, ...(kept.length ? { notRetried: kept } : {}) },
    );
    return this.views.of(reopened);
  }

  /** Cancels (when still running), then deletes the shot's objects and records. */
  async remove(id: string, owner: string): Promise<void> {
    const shot = await this.access.owned(id, owner);
    if (!TERMINAL_SHOT.includes(shot.state)) {
      try {
        await this.cancel(id, owner);
      } catch (e) {
        // Finished meanwhile: nothing left to stop.
        if (!(e instanceof StateConflictError)) throw e;
      }
    }
    await this.access.discardObjects(shot.project, id);
    await this.store.delete(id);
  }
}
