/**
 * The finalize job, after every frame of a round has finished: frame records still unfinished
 * are first brought in line with their jobs (a frame whose worker died and whose job BullMQ
 * failed is recorded failed, with frame.failed); then shot.json is written with the round's
 * outcome and the shot takes it (a cancelled shot stays cancelled, and shot.json says so), so
 * whoever sees the shot finished can read its shot.json; the final event goes out last. Idempotent: the
 * queue retries it until it has done all of it, and a rerun rewrites the same shot.json and
 * publishes nothing twice. A finalize of an earlier round (the shot was retried since) changes
 * nothing.
 */
import { canonicalJson, frameCounts, shotManifest, shotOutcome, StateConflictError, type JobData, type ShotRecord, type ShotState, type ShotStore } from '@celfarm/jobs';
import { shotKeys, type ObjectStore } from '@celfarm/storage';
import { existingShot } from './errors.ts';
import { publishAbout, type FarmEvents } from './farm-events.ts';
import type { FrameFate } from './frame-fate.ts';

export interface FinalizeShotDeps {
  store: ShotStore;
  objects: ObjectStore;
  fate: Pick<FrameFate, 'reconcile'>;
  /** Object key prefix (S3_PREFIX). */
  objectPrefix: string;
  log: (line: string) => void;
  events?: FarmEvents;
}

export class FinalizeShot {
  constructor(private readonly deps: FinalizeShotDeps) {}

  async run(ref: JobData<'finalize'>): Promise<ShotState> {
    const { store, fate } = this.deps;
    let shot = await existingShot(store, ref.shotId);
    // Jobs queued before payloads carried their round have none: they belong to the shot's round.
    if (ref.round !== undefined && ref.round !== shot.round) {
      this.deps.log(`finalize shot=${shot.id} round=${ref.round}: the shot is in round ${shot.round}; nothing to do`);
      return shot.state;
    }
    for (const f of await store.frames(shot.id)) {
      if (f.state === 'waiting' || f.state === 'active') await fate.reconcile(shot.id, f.frame, shot.round);
    }
    const frames = await store.frames(shot.id);
    const manifestKey = shotKeys(this.deps.objectPrefix, shot.project, shot.id).manifest;
    let written: string | undefined;
    const writeManifest = async (of: ShotRecord) => {
      const manifest = canonicalJson(shotManifest(of, frames));
      if (manifest === written) return;
      await this.deps.objects.put(manifestKey, new TextEncoder().encode(manifest), 'application/json');
      written = manifest;
    };
    if (shot.state !== 'cancelled') {
      const outcome = shotOutcome(shot, frames);
      const round = shot.round;
      // shot.json before the state: whoever sees the shot finished can read it at once.
      await writeManifest({ ...shot, state: outcome.state, error: outcome.error });
      try {
        // Only this round's outcome: a retry of this job may run after a re-render started the next.
        shot = (await store.update(shot.id, { state: outcome.state, error: outcome.error }, { round })) ?? shot;
      } catch (e) {
        if (!(e instanceof StateConflictError)) throw e;
        shot = await existingShot(store, shot.id);
        if (shot.round !== round) {
          this.deps.log(`finalize shot=${shot.id} round=${round}: the shot moved on to round ${shot.round}; nothing to do`);
          return shot.state;
        }
        if (shot.state !== 'cancelled') throw e;
      }
    }
    await writeManifest(shot);
    // After shot.json, so a receiver of the event can read it.
    if (shot.state === 'completed' || shot.state === 'failed') {
      await publishAbout(this.deps.events, `shot.${shot.state}`, shot, { counts: frameCounts(frames), ...(shot.error ? { error: shot.error } : {}) });
    }
    return shot.state;
  }
}
