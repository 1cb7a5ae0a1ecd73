/** What a client sees of a shot: the records plus counts, progress and ETA. Pure. */
import { estimateSeconds, frameCounts, isRetryable, type FrameRecord, type ShotRecord } from '@celfarm/jobs';
import type { FrameView, ShotSummary, ShotView } from './shots.dto.ts';

// The live snapshot takes its counts from here too; they are computed in @celfarm/jobs.
export { frameCounts };

/** Completed frames plus the sampled share of active ones, over the frame count (0–1). */
export function shotProgress(frameCount: number, frames: readonly FrameRecord[]): number {
  if (frameCount <= 0) return 0;
  let done = 0;
  for (const f of frames) {
    if (f.state === 'completed') done += 1;
    else if (f.state === 'active' && f.step !== undefined && f.steps) done += Math.min(1, Math.max(0, f.step / f.steps));
  }
  return Math.min(1, done / frameCount);
}

export function shotSummary(shot: ShotRecord, frames: readonly FrameRecord[], liveWorkers: number): ShotSummary {
  return {
    id: shot.id,
    project: shot.project,
    state: shot.state,
    createdAt: shot.createdAt,
    updatedAt: shot.updatedAt,
    settings: shot.settings,
    seed: shot.seed,
    priority: shot.priority,
    pack: shot.pack,
    frameCount: shot.frameCount,
    counts: frameCounts(frames),
    retryableFrames: frames.filter(isRetryable).length,
    progress: shotProgress(shot.frameCount, frames),
    etaSeconds: shot.awaitingUploads ? null : estimateSeconds([...frames], liveWorkers),
    failedFrameShare: shot.failedFrameShare,
    awaitingUploads: shot.awaitingUploads,
    round: shot.round,
    inputs: { reference: shot.inputs.reference, ...(shot.inputs.background ? { background: shot.inputs.background } : {}) },
    ...(shot.error ? { error: shot.error } : {}),
  };
}

/**
 * The full view; `outputUrls` maps frame numbers to the URLs of completed outputs (presigned, or
 * paths on the API), `inputUrls` to those of the sketch inputs, `previewUrls` of the outputs'
 * small WebP previews (the dashboard's thumbnails).
 */
export function shotView(
  shot: ShotRecord,
  frames: readonly FrameRecord[],
  liveWorkers: number,
  outputUrls: ReadonlyMap<number, string> = new Map(),
  inputUrls: ReadonlyMap<number, string> = new Map(),
  previewUrls: ReadonlyMap<number, string> = new Map(),
): ShotView {
  return {
    ...shotSummary(shot, frames, liveWorkers),
    frames: frames.map((f): FrameView => {
      const url = outputUrls.get(f.frame);
      return {
        frame: f.frame,
        state: f.state,
        ...(f.stage !== undefined ? { stage: f.stage } : {}),
        ...(f.step !== undefined ? { step: f.step } : {}),
        ...(f.steps !== undefined ? { steps: f.steps } : {}),
        attempts: f.attempts,
        ...(f.worker !== undefined ? { worker: f.worker } : {}),
        seed: f.seed,
        ...(f.error ? { error: f.error } : {}),
        input: shot.inputs.frames[f.frame - 1] ?? '',
        ...(inputUrls.has(f.frame) ? { inputUrl: inputUrls.get(f.frame) } : {}),
        ...(f.output !== undefined ? { output: f.output } : {}),
        ...(url ? { outputUrl: url } : {}),
        ...(url && previewUrls.has(f.frame) ? { previewUrl: previewUrls.get(f.frame) } : {}),
      };
    }),
  };
}
