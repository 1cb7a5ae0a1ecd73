/** What a client sees of a shot and its frames: the records plus counts, progress and ETA. Pure. */
import { SHOT_VIEW_ACTIVE_MAX, type FrameQuery, type FrameState, type LiveFrame } from '@celfarm/contract';
import { countsOf, etaOf, framesIn, isFlagged, lastSegment, needsReview, progressOf, type FrameRecord, type ShotDigest, type ShotRecord } from '@celfarm/jobs';
import type { FrameView, ShotSummary, ShotView } from './shots.dto.ts';

export { isFlagged, needsReview };

/** The summary of a shot from its digest (tally, states, active records): no frame list. */
export function shotSummary(shot: ShotRecord, digest: ShotDigest, liveWorkers: number): ShotSummary {
  const { tally, active } = digest;
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
    counts: countsOf(tally),
    flagged: tally.flagged,
    needsReview: tally.needsReview,
    ...(shot.qaThresholds ? { qaThresholds: shot.qaThresholds } : {}),
    ...(shot.consistency ? { consistency: shot.consistency } : {}),
    retryableFrames: tally.retryable,
    progress: progressOf(shot.frameCount, tally, active),
    etaSeconds: shot.awaitingUploads ? null : etaOf(tally, active, liveWorkers),
    failedFrameShare: shot.failedFrameShare,
    awaitingUploads: shot.awaitingUploads,
    round: shot.round,
    inputs: { reference: shot.inputs.reference, ...(shot.inputs.background ? { background: shot.inputs.background } : {}) },
    ...(shot.error ? { error: shot.error } : {}),
  };
}

/**
 * Active frames with their stage and sampler step, in the order given (frame order, as the store
 * reads them); at most `max`.
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
export function shotView(shot: ShotRecord, digest: ShotDigest, liveWorkers: number): ShotView {
  return { ...shotSummary(shot, digest, liveWorkers), active: activeFrames(digest.active, SHOT_VIEW_ACTIVE_MAX) };
}

/** Whether a frame passes the `review` filter of the frames query. */
const reviewMatches = (f: FrameRecord, review: FrameQuery['review']): boolean =>
  review === undefined || (review === 'needed' ? needsReview(f) : f.review?.state === 'approved');

/** Whether a frame passes the filters of the frames query other than its state. */
export const frameMatches = (f: FrameRecord, query: FrameQuery): boolean =>
  (query.flagged === undefined || isFlagged(f) === query.flagged) && reviewMatches(f, query.review);

/**
 * One page of `GET /v1/shots/{id}/frames`: the frames after the cursor (a frame number) in the
 * states asked for (and flagged or not, when asked), in frame order; `next` is the last frame of
 * the page when more follow. `states` holds the shot's frame states (one letter per frame), which
 * picks the candidates; `read` fetches records a chunk at a time, until the page is full and one
 * more matches — a first page reads a page of records, not the whole shot.
 */
export async function pageOfFrames(
  states: string,
  read: (numbers: readonly number[]) => Promise<FrameRecord[]>,
  query: FrameQuery,
): Promise<{ frames: FrameRecord[]; next: string | null }> {
  const wanted = query.state ? new Set<FrameState>(query.state) : null;
  const candidates = framesIn(states, wanted, query.cursor === undefined ? 0 : Number(query.cursor));
  const chunk = Math.max(64, query.limit + 1);
  const page: FrameRecord[] = [];
  for (let i = 0; i < candidates.length; i += chunk) {
    for (const f of await read(candidates.slice(i, i + chunk))) {
      // The record decides (its state may have moved since the letters were read).
      if ((wanted && !wanted.has(f.state)) || !frameMatches(f, query)) continue;
      // One more than the page holds tells whether another page follows.
      if (page.length === query.limit) return { frames: page, next: String(page.at(-1)!.frame) };
      page.push(f);
    }
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
