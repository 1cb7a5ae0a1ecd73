/** What a client sees of a shot and its frames: the records plus counts, progress and ETA. Pure. */
import { SHOT_VIEW_ACTIVE_MAX, type FrameQuery, type FrameState, type LiveFrame } from '@celfarm/contract';
import { estimateSeconds, frameCounts, isRetryable, lastSegment, type FrameRecord, type ShotRecord } from '@celfarm/jobs';
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
    // Shots from before names have none: their id stands in.
    name: shot.name ?? shot.id,
    ...(shot.externalIds ? { externalIds: shot.externalIds } : {}),
    state: shot.state,
    createdAt: shot.createdAt,
    updatedAt: shot.updatedAt,
    settings: shot.settings,
    warnings: shot.warnings,
    seed: shot.seed,
    priority: shot.priority,
    pack: shot.pack,
    frameCount: shot.frameCount,
    counts: frameCounts(frames),
    flagged: frames.filter(isFlagged).length,
    needsReview: frames.filter(needsReview).length,
    ...(shot.qaThresholds ? { qaThresholds: shot.qaThresholds } : {}),
    ...(shot.consistency ? { consistency: shot.consistency } : {}),
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
 * Active frames with their stage and sampler step, lowest frame numbers first; at most `max`.
 * The shot view and the live snapshot both list them so.
 */
export function activeFrames(frames: readonly FrameRecord[], max = Infinity): LiveFrame[] {
  const out: LiveFrame[] = [];
  for (const f of frames) {
    if (out.length >= max) break;
    if (f.state !== 'active') continue;
    out.push({
      frame: f.frame,
      ...(f.stage !== undefined ? { stage: f.stage } : {}),
      ...(f.step !== undefined ? { step: f.step } : {}),
      ...(f.steps !== undefined ? { steps: f.steps } : {}),
      ...(f.worker !== undefined ? { worker: f.worker } : {}),
    });
  }
  return out;
}

/** The shot view: the summary and its active frames; its frames are paged by {@link pageOfFrames}. */
export function shotView(shot: ShotRecord, frames: readonly FrameRecord[], liveWorkers: number): ShotView {
  return { ...shotSummary(shot, frames, liveWorkers), active: activeFrames(frames, SHOT_VIEW_ACTIVE_MAX) };
}

/** Whether shot QA flagged the frame for review (a score past its threshold). */
export const isFlagged = (f: FrameRecord): boolean => (f.qa?.flagged.length ?? 0) > 0;

/** Flagged and not approved: the frame waits for a person (a completed frame only). */
export const needsReview = (f: FrameRecord): boolean => f.state === 'completed' && isFlagged(f) && f.review?.state !== 'approved';

/** Whether a frame passes the `review` filter of the frames query. */
const reviewMatches = (f: FrameRecord, review: FrameQuery['review']): boolean =>
  review === undefined || (review === 'needed' ? needsReview(f) : f.review?.state === 'approved');

/**
 * One page of `GET /v1/shots/{id}/frames`: the frames after the cursor (a frame number) in the
 * states asked for (and flagged or not, when asked), in frame order; `next` is the last frame of
 * the page when more follow.
 */
export function pageOfFrames(frames: readonly FrameRecord[], query: FrameQuery): { frames: FrameRecord[]; next: string | null } {
  const after = query.cursor === undefined ? 0 : Number(query.cursor);
  const wanted = query.state ? new Set<FrameState>(query.state) : null;
  const page: FrameRecord[] = [];
  for (const f of frames) {
    if (f.frame <= after || (wanted && !wanted.has(f.state))) continue;
    if (query.flagged !== undefined && isFlagged(f) !== query.flagged) continue;
    if (!reviewMatches(f, query.review)) continue;
    // One more than the page holds tells whether another page follows.
    if (page.length === query.limit) return { frames: page, next: String(page.at(-1)!.frame) };
    page.push(f);
  }
  return { frames: page, next: null };
}

/** Where a client GETs a frame's images: each present only while its object exists. */
export interface FrameUrls {
  input?: string;
  output?: string;
  preview?: string;
  /** Of each earlier take, by its round. */
  takes?: ReadonlyMap<number, { output?: string; preview?: string }>;
}

/** One frame as its shot's frame pages list it. */
export function frameView(shot: ShotRecord, f: FrameRecord, urls: FrameUrls = {}): FrameView {
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
    // Frames from before file names: their input key's last segment.
    fileName: f.fileName ?? lastSegment(shot.inputs.frames[f.frame - 1] ?? ''),
    ...(urls.input ? { inputUrl: urls.input } : {}),
    ...(f.output !== undefined ? { output: f.output } : {}),
    ...(urls.output ? { outputUrl: urls.output } : {}),
    ...(urls.output && urls.preview ? { previewUrl: urls.preview } : {}),
    ...(f.qa ? { qa: f.qa } : {}),
    needsReview: needsReview(f),
    ...(f.referenceFrom ? { referenceFrom: f.referenceFrom } : {}),
    ...(f.review ? { review: f.review } : {}),
    ...(f.takes?.length
      ? {
          takes: f.takes.map((t) => {
            const u = urls.takes?.get(t.round);
            return {
              round: t.round,
              seed: t.seed,
              output: t.output,
              ...(u?.output ? { outputUrl: u.output } : {}),
              ...(u?.preview ? { previewUrl: u.preview } : {}),
              ...(t.qa ? { qa: t.qa } : {}),
              ...(t.review ? { review: t.review } : {}),
              replacedAt: t.replacedAt,
            };
          }),
        }
      : {}),
  };
}
