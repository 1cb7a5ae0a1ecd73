/**
 * The compact shot snapshot that `GET /v1/live` sends every second as `event: shots`: enough for
 * the dashboard to move progress bars and sampler steps without refetching shot views. Pure.
 */
import { FRAME_LETTERS, type LiveShot } from '@celfarm/contract';
import { TERMINAL_SHOT, estimateSeconds, type FrameRecord, type ShotRecord } from '@celfarm/jobs';
import { activeFrames, frameCounts, shotProgress } from '../shots/shot-view.ts';

export type { LiveShot, LiveSnapshot } from '@celfarm/contract';

/**
 * Whether a shot belongs in the snapshot: every unfinished shot, and finished ones for
 * `recentMs` after their last change, so a client that missed the closing event still sees it.
 */
export function isLive(shot: ShotRecord, now: number, recentMs: number): boolean {
  return !TERMINAL_SHOT.includes(shot.state) || now - Date.parse(shot.updatedAt) <= recentMs;
}

export function liveShot(shot: ShotRecord, frames: readonly FrameRecord[], liveWorkers: number): LiveShot {
  return {
    id: shot.id,
    state: shot.state,
    updatedAt: shot.updatedAt,
    progress: shotProgress(shot.frameCount, frames),
    etaSeconds: shot.awaitingUploads ? null : estimateSeconds([...frames], liveWorkers),
    frameCount: shot.frameCount,
    counts: frameCounts(frames),
    frames: frames.map((f) => FRAME_LETTERS[f.state]).join(''),
    active: activeFrames(frames),
  };
}
