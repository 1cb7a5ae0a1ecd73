/**
 * What a studio does to a shot once submitted: cancel it, retry its failed frames, review its
 * frames (approve one, render one again with another seed), delete it.
 */
import { randomInt } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { MAX_SEED } from '@celfarm/pipeline/settings-schema';
import {
  canonicalJson,
  cancelledPatch,
  currentTake,
  describeFailures,
  isRetryable,
  rerenderPatch,
  shotManifest,
  withoutFlicker,
  shotIdentity,
  StateConflictError,
  TERMINAL_SHOT,
  type FarmQueues,
  type FrameRecord,
  type TakeKeys,
  type ShotRecord,
  type ShotStore,
} from '@celfarm/jobs';
import type { ObjectStore } from '@celfarm/storage';
import type { EventPublisher } from '@celfarm/webhooks';
import { ApiError, notFound } from '../core/api-error.ts';
import { mapLimit } from '../core/concurrency.ts';
import { FARM_QUEUES, OBJECT_STORE, SHOT_STORE } from '../core/tokens.ts';
import { EVENT_PUBLISHER } from '../webhooks/webhooks.tokens.ts';
import { IO_CONCURRENCY } from './input-checks.ts';
import { ShotAccess } from './shot-access.ts';
import { ShotViews } from './shot-views.ts';
import type { FrameView, ShotView } from './shots.dto.ts';

/** How long a retry or re-render waits for the finishing round's finalize before answering 409. */
const FINALIZE_WAIT_MS = 5_000;

@Injectable()
export class ShotLifecycle {
  constructor(
    @Inject(SHOT_STORE) private readonly store: ShotStore,
    @Inject(FARM_QUEUES) private readonly queues: FarmQueues,
    @Inject(EVENT_PUBLISHER) private readonly events: EventPublisher,
    @Inject(ShotAccess) private readonly access: ShotAccess,
    @Inject(ShotViews) private readonly views: ShotViews,
    @Inject(OBJECT_STORE) private readonly objects: ObjectStore,
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
    // A frame a re-render handed back returns to the take it had (cancelledPatch).
    await mapLimit(waiting, IO_CONCURRENCY, (f) => this.store.setFrame(id, f.frame, cancelledPatch, ['waiting']));
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
    await this.notFinalizing(shot);
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
    const reopened = await this.store.update(id, { state: 'running', round, error: undefined }, { from: ['failed', 'completed'], round: shot.round });
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

  /**
   * Approves a completed frame's take as it is: it no longer needs review (`needsReview`), though
   * its scores and flags stay. Idempotent; a re-render clears it. 409 when the frame has no take.
   */
  async approve(id: string, owner: string, frame: number, by: string): Promise<FrameView> {
    const shot = await this.access.owned(id, owner);
    const f = await this.frameOf(shot.id, shot.frameCount, frame);
    if (f.state !== 'completed') throw new ApiError(409, 'STATE_CONFLICT', `frame ${frame} of shot ${id} is ${f.state}; only a completed frame can be approved`);
    const approved =
      f.review?.state === 'approved'
        ? f
        : await this.store.setFrame(id, frame, { review: { state: 'approved', at: new Date().toISOString(), by } }, ['completed']);
    if (!approved) throw new ApiError(409, 'STATE_CONFLICT', `frame ${frame} of shot ${id} changed meanwhile; read it again`);
    if (approved !== f) await this.refreshManifest(id);
    return this.views.frame(id, owner, frame);
  }

  /**
   * shot.json again after a review change on a finished shot, so it records the approval at once
   * (while a round runs, its finalize writes shot.json with it).
   */
  private async refreshManifest(id: string): Promise<void> {
    const shot = await this.store.get(id);
    if (!shot || !TERMINAL_SHOT.includes(shot.state) || (await this.queues.finalizing(id, shot.round))) return;
    const manifest = canonicalJson(shotManifest(shot, await this.store.frames(id)));
    await this.objects.put(this.access.keys(shot.project, id).manifest, new TextEncoder().encode(manifest), 'application/json');
  }

  /**
   * Renders frames of a finished shot again with another seed, as one new round: each frame's
   * current take (output, preview, scores, review) is kept as lineage — its images copied aside
   * first, so the new take does not overwrite them — the shot runs again for those frames, and the
   * flicker of each next frame (measured against a frame being replaced) is scored again once both
   * are completed. `seed`: every listed frame renders with it; absent, each gets a new random one.
   * Every frame is checked before anything changes.
   */
  async rerender(id: string, owner: string, frames: readonly number[], seed: number | undefined): Promise<ShotView> {
    const shot = await this.access.owned(id, owner);
    const wanted = [...new Set(frames)].sort((a, b) => a - b);
    const records = await Promise.all(wanted.map((n) => this.frameOf(shot.id, shot.frameCount, n)));
    if (shot.state !== 'failed' && shot.state !== 'completed') {
      throw new ApiError(409, 'STATE_CONFLICT', `shot ${id} is ${shot.state}; frames can be rendered again once the shot has finished`);
    }
    await this.notFinalizing(shot);
    const busy = records.filter((f) => f.state !== 'completed' && f.state !== 'failed');
    if (busy.length) {
      throw new ApiError(409, 'STATE_CONFLICT', `shot ${id}: ${busy.map((f) => `frame ${f.frame} is ${f.state}`).join(', ')}; only a completed or failed frame can be rendered again`);
    }
    const fixed = records.filter((f) => f.state === 'failed' && !isRetryable(f));
    if (fixed.length) {
      throw new ApiError(409, 'NOT_RETRYABLE', `shot ${id}: ${describeFailures(fixed)} — failed for a reason another seed cannot fix; fix the input and submit it again`);
    }
    // Claim the next round first (a concurrent re-render or retry then gets 409), only from the
    // round read above; then copy the takes aside and hand the frames back.
    const round = shot.round + 1;
    const reopened = await this.store.update(id, { state: 'running', round, error: undefined }, { from: ['failed', 'completed'], round: shot.round });
    if (!reopened) throw notFound('shot', id);
    const seeds = records.map(() => seed ?? randomInt(0, MAX_SEED + 1));
    let handed = 0;
    try {
      const takes = await mapLimit(records, IO_CONCURRENCY, (f) => (f.state === 'completed' && f.output ? this.copyTake(shot, f) : Promise.resolve(null)));
      const replacedAt = new Date().toISOString();
      await mapLimit(records.map((f, i) => ({ f, i })), IO_CONCURRENCY, async ({ f, i }) => {
        const keys = takes[i];
        // The take as the record is now (an approval made meanwhile goes with it).
        const handedBack = await this.store.setFrame(
          id,
          f.frame,
          (cur) => rerenderPatch(cur, round, seeds[i]!, keys ? currentTake(cur, keys, replacedAt) : null),
          (cur) => cur.state === f.state && cur.take === f.take,
        );
        if (!handedBack) throw new ApiError(409, 'STATE_CONFLICT', `frame ${f.frame} of shot ${id} changed meanwhile; read it again`);
        handed++;
      });
    } catch (e) {
      // Nothing handed back yet (the copies failed, e.g. the store is away): the shot goes back
      // to how it was, so the user can try again. (Frames handed back are rendered by the round.)
      if (handed === 0) await this.store.update(id, { state: shot.state, round: shot.round, ...(shot.error ? { error: shot.error } : {}) }, { from: ['running'], round }).catch(() => undefined);
      if (handed === 0) throw e;
    }
    const following = wanted.map((n) => n + 1).filter((n) => n <= shot.frameCount && !wanted.includes(n));
    await mapLimit(following, IO_CONCURRENCY, (n) => this.store.setFrame(id, n, (cur) => ({ qa: withoutFlicker(cur.qa) })));
    await this.queues.addFrameFlow({ shotId: id, project: shot.project }, wanted, shot.priority, round);
    await this.events.publish(
      'shot.started',
      { project: shot.project, shotId: id, round },
      { ...shotIdentity(shot), state: 'running', round, frames: wanted, rerender: wanted.map((frame, i) => ({ frame, seed: seeds[i] })) },
    );
    return this.views.of(reopened);
  }

  /**
   * Waits (up to FINALIZE_WAIT_MS) for the round's finalize to finish writing its outcome,
   * shot.json and final event — a shot is recorded finished a moment before those — then 409.
   */
  private async notFinalizing(shot: ShotRecord): Promise<void> {
    const until = Date.now() + FINALIZE_WAIT_MS;
    while (await this.queues.finalizing(shot.id, shot.round)) {
      if (Date.now() >= until) {
        throw new ApiError(409, 'STATE_CONFLICT', `shot ${shot.id} is still finishing round ${shot.round} (shot.json, its final event); try again in a moment`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The frame's current output and preview, copied to the take keys of its round. */
  private async copyTake(shot: ShotRecord, f: FrameRecord): Promise<TakeKeys> {
    const keys = this.access.keys(shot.project, shot.id);
    const round = f.take ?? 0;
    const copy = async (from: string, to: string, type: string) => {
      const bytes = await this.objects.get(from);
      if (!bytes) return false;
      await this.objects.put(to, bytes, type);
      return true;
    };
    const output = keys.takeOutput(f.frame, f.fileName, round);
    const preview = keys.takePreview(f.frame, f.fileName, round);
    if (!(await copy(f.output!, output, 'image/png'))) throw new ApiError(409, 'STATE_CONFLICT', `frame ${f.frame} of shot ${shot.id} has no output to keep (${f.output})`);
    const hasPreview = await copy(keys.preview(f.frame, f.fileName), preview, 'image/webp');
    return { output, ...(hasPreview ? { preview } : {}) };
  }

  private async frameOf(id: string, frameCount: number, frame: number): Promise<FrameRecord> {
    const f = frame >= 1 && frame <= frameCount ? await this.store.frame(id, frame) : null;
    if (!f) throw new ApiError(404, 'NOT_FOUND', `shot ${id} has no frame ${frame} (it has ${frameCount})`, 'frame');
    return f;
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
