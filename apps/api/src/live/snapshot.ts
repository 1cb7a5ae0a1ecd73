/**
 * The compact shot snapshot that `GET /v1/live` sends every second as `event: shots`: enough for
 * the dashboard to move progress bars and sampler steps without refetching shot views. Pure.
 */
import { TERMINAL_SHOT, countsOf, etaOf, progressOf, type ShotDigest, type ShotRecord } from '@celfarm/jobs';
import type { LiveShot } from '@celfarm/contract';
import { activeFrames } from '../shots/shot-view.ts';

export type { LiveShot, LiveSnapshot } from '@celfarm/contract';

/**
 * Whether a shot belongs in the snapshot: every unfinished shot, and finished ones for
 * `recentMs` after their last change, so a client that missed the closing event still sees it.
 */
export function isLive(shot: ShotRecord, now: number, recentMs: number): boolean {
  return !TERMINAL_SHOT.includes(shot.state) || now - Date.parse(shot.updatedAt) <= recentMs;
}

export function liveShot(shot: ShotRecord, digest: ShotDigest, liveWorkers: number): LiveShot {
  const { tally, states, active } = digest;
  return {
    id: shot.id,
    state: shot.state,
    updatedAt: shot.updatedAt,
    progress: progressOf(shot.frameCount, tally, active),
    etaSeconds: shot.awaitingUploads ? null : etaOf(tally, active, liveWorkers),
    frameCount: shot.frameCount,
    counts: countsOf(tally),
    frames: states,
    active: activeFrames(active),
  };
}
