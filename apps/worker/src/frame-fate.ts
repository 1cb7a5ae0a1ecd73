/**
 * {@link FrameFate}: keeps frame records in line with their BullMQ jobs when no processor is
 * there to do it — a worker killed mid-frame, a job BullMQ failed without running it (stalled
 * more than FRAME_STALL_LIMIT), a record write lost with Redis. The decision is `frameFix` of
 * @celfarm/jobs; this class reads the record and the job, writes the fix only if the record is
 * still the one it judged (a worker that took the frame meanwhile wins), and tells the world:
 * `frame.failed` (published once per frame and round) and the frames metric.
 */
import { cancelledPatch, frameFix, type FarmQueues, type FrameFix, type FrameRecord, type ShotStore } from '@celfarm/jobs';
import type { FarmMetrics } from '@celfarm/metrics';
import type { FarmEvents } from './farm-events.ts';

export interface FrameFateOptions {
  store: Pick<ShotStore, 'get' | 'frame' | 'setFrame' | 'activeFrames' | 'forgetActive'>;
  queues: Pick<FarmQueues, 'frameJob'>;
  metrics: FarmMetrics;
  events?: FarmEvents;
  /** One line per record fixed. */
  log?: (line: string) => void;
}

/** Re-reads after a lost compare-and-set are bounded: each one means someone else just wrote the record. */
const MAX_TRIES = 10;

const sameRecord = (a: FrameRecord, b: FrameRecord) => JSON.stringify(a) === JSON.stringify(b);

export class FrameFate {
  constructor(private readonly opts: FrameFateOptions) {}

  /**
   * Brings frame `frame` of shot `shotId` in line with its job of `round` (default: the shot's
   * current round; a job of an older round no longer owns the record and changes nothing).
   * Returns the fix written, or null when the record already agreed.
   */
  async reconcile(shotId: string, frame: number, round?: number): Promise<FrameFix | null> {
    const { store, queues } = this.opts;
    for (let tries = 0; tries < MAX_TRIES; tries++) {
      const shot = await store.get(shotId);
      if (!shot || (round !== undefined && round !== shot.round)) return null;
      // The record first, then the job: a worker that takes the job after this read also
      // rewrites the record, so the guarded write below cannot undo its claim.
      const record = await store.frame(shotId, frame);
      if (!record) return null;
      const job = await queues.frameJob(shotId, frame, shot.round);
      // A retry or a re-render may have moved the shot to a new round since it was read: then the
      // record may already be the new round's and the job read is not its job. Judge again. (A
      // round that moves after this check hands back finished frames only, which no fix touches.)
      if ((await store.get(shotId))?.round !== shot.round) continue;
      const fix = frameFix(record, job, { cancelled: shot.state === 'cancelled' });
      if (!fix) return null;
      const patch: Partial<FrameRecord> =
        fix.state === 'failed' ? { state: 'failed', error: fix.error, stage: undefined, step: undefined, steps: undefined } : fix.state === 'cancelled' ? cancelledPatch(record) : { state: fix.state };
      const written = await store.setFrame(shotId, frame, patch, (cur) => sameRecord(cur, record));
      if (!written) continue;
      this.opts.log?.(`frame shot=${shotId} frame=${frame} record ${record.state} → ${fix.state}${fix.state === 'failed' ? ` (${fix.error.code})` : ''}${record.worker ? `, was on ${record.worker}` : ''}`);
      if (fix.state === 'failed') {
        this.opts.metrics.frames.inc({ outcome: 'failed', reason: fix.error.code });
        await this.opts.events?.publish('frame.failed', { project: shot.project, shotId, frame, round: shot.round }, { error: fix.error, attempts: record.attempts });
      } else if (fix.state === 'cancelled') {
        this.opts.metrics.frames.inc({ outcome: 'cancelled', reason: 'CANCELLED' });
      }
      return fix;
    }
    return null;
  }

  /**
   * The reaper's pass: every frame recorded `active` whose job is not active any more (its
   * worker died and the job went back to the queue or failed) is fixed. Returns how many were.
   */
  async reap(): Promise<number> {
    let fixed = 0;
    for (const { shotId, frame } of await this.opts.store.activeFrames()) {
      const record = await this.opts.store.frame(shotId, frame);
      if (!record) {
        await this.opts.store.forgetActive(shotId, frame);
        continue;
      }
      if (record.state === 'active' && (await this.reconcile(shotId, frame))) fixed++;
    }
    return fixed;
  }
}
