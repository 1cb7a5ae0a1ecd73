/**
 * The compact shot snapshot that `GET /v1/live` sends every second as `event: shots`: enough for
 * the dashboard to move progress bars and sampler steps without refetching shot views. Pure.
 */
import { TERMINAL_SHOT, estimateSeconds, type FrameRecord, type FrameState, type ShotRecord, type ShotState } from '@celfarm/jobs';
import { frameCounts, shotProgress } from '../shots/shot-view.ts';

/** One letter per frame state, so a 2000-frame shot costs 2000 bytes, not 2000 objects. */
export const FRAME_LETTERS: Record<FrameState, string> = {
  waiting: 'w',
  active: 'a',
  completed: 'c',
  failed: 'f',
  cancelled: 'x',
};

export interface LiveFrame {
  frame: number;
  stage?: string;
  step?: number;
  steps?: number;
  worker?: string;
}

export interface LiveShot {
  id: string;
  state: ShotState;
  updatedAt: string;
  /** 0–1, as in the shot view. */
  progress: number;
  etaSeconds: number | null;
  frameCount: number;
  counts: Record<FrameState, number>;
  /** Frame k's state is letter k − 1: w waiting, a active, c completed, f failed, x cancelled. */
  frames: string;
  /** Active frames with their stage and sampler step. */
  active: LiveFrame[];
}

export interface LiveSnapshot {
  at: string;
  shots: LiveShot[];
}

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
    active: frames
      .filter((f) => f.state === 'active')
      .map((f) => ({
        frame: f.frame,
        ...(f.stage !== undefined ? { stage: f.stage } : {}),
        ...(f.step !== undefined ? { step: f.step } : {}),
        ...(f.steps !== undefined ? { steps: f.steps } : {}),
        ...(f.worker !== undefined ? { worker: f.worker } : {}),
      })),
  };
}
