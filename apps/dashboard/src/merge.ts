/** Folding live snapshots into what the pages hold, and fetched frames into loaded ones. Pure. */
import { FRAME_LETTER_STATES, type FrameView, type LiveShot, type ShotSummary, type ShotView } from './api.ts';

export function mergeSummary<T extends ShotSummary>(shot: T, live: LiveShot | undefined): T {
  if (!live || live.id !== shot.id) return shot;
  return { ...shot, state: live.state, updatedAt: live.updatedAt, progress: live.progress, etaSeconds: live.etaSeconds, counts: live.counts };
}

/**
 * The view with the snapshot's state, counts and active frames. `stale` is true when the view
 * now lacks something only a refetch brings: the shot's outcome and error, or how many of its
 * failed frames a retry could fix.
 */
export function mergeView(view: ShotView, live: LiveShot | undefined): { view: ShotView; stale: boolean } {
  if (!live || live.id !== view.id) return { view, stale: false };
  const merged = { ...mergeSummary(view, live), active: live.active };
  return { view: merged, stale: merged.state !== view.state || merged.counts.failed !== view.counts.failed };
}

/**
 * Loaded frames with the snapshot's states and sampler steps (the same array when nothing
 * changed). A frame that leaves `failed` (a retry) drops its old error; one that leaves
 * `completed` (a re-render) drops its take: output, scores and review come back with the new one.
 */
export function mergeFrames(frames: readonly FrameView[], live: LiveShot | undefined): readonly FrameView[] {
  if (!live) return frames;
  const active = new Map(live.active.map((a) => [a.frame, a]));
  let changed = false;
  const merged = frames.map((f): FrameView => {
    const state = FRAME_LETTER_STATES[live.frames[f.frame - 1] ?? ''] ?? f.state;
    const a = active.get(f.frame);
    if (!a && state === f.state) return f;
    changed = true;
    const { error, ...rest } = state !== 'completed' && f.state === 'completed' ? withoutTake(f) : f;
    const next: FrameView = { ...rest, state, ...(error && state === 'failed' ? { error } : {}) };
    return a ? { ...next, stage: a.stage ?? f.stage, step: a.step ?? f.step, steps: a.steps ?? f.steps, worker: a.worker ?? f.worker } : next;
  });
  return changed ? merged : frames;
}

/** The frame without its current take (what a re-render replaces). */
function withoutTake(f: FrameView): FrameView {
  const { output: _o, outputUrl: _u, previewUrl: _p, qa: _q, review: _r, ...rest } = f;
  return { ...rest, needsReview: false };
}

/** The flipbook's frames without those the snapshot shows no longer completed (rendered again); the same array when none. */
export function dropUncompleted(colour: readonly FrameView[], live: LiveShot | undefined): readonly FrameView[] {
  if (!live) return colour;
  const kept = colour.filter((f) => (FRAME_LETTER_STATES[live.frames[f.frame - 1] ?? ''] ?? 'completed') === 'completed');
  return kept.length === colour.length ? colour : kept;
}

/** Whether a frame lacks what only a fetch brings: the colour URLs of a completed one, the error of a failed one. */
export const lacksDetails = (f: FrameView): boolean => (f.state === 'completed' && !f.outputUrl) || (f.state === 'failed' && !f.error);

/** Frames the snapshot shows completed that `colour` (the flipbook's frames) does not hold yet. */
export function newlyCompleted(live: LiveShot | undefined, colour: readonly FrameView[]): number[] {
  if (!live) return [];
  const held = new Set(colour.map((f) => f.frame));
  const out: number[] = [];
  for (let i = 0; i < live.frames.length; i++) if (FRAME_LETTER_STATES[live.frames[i]!] === 'completed' && !held.has(i + 1)) out.push(i + 1);
  return out;
}

/** Whether two copies of a frame hold the same take: a re-render writes another one under the same output key. */
const sameTake = (a: FrameView, b: FrameView): boolean => a.output === b.output && a.seed === b.seed && (a.takes?.length ?? 0) === (b.takes?.length ?? 0);

/**
 * A fetched frame keeps the presigned URLs its loaded copy had for the same objects, so the
 * browser does not download every thumbnail again (each signature is a new URL).
 */
export function keepUrls(prev: FrameView | undefined, next: FrameView): FrameView {
  if (!prev) return next;
  const take = sameTake(prev, next);
  return {
    ...next,
    ...(prev.inputUrl && next.inputUrl && prev.input === next.input ? { inputUrl: prev.inputUrl } : {}),
    ...(prev.outputUrl && next.outputUrl && take ? { outputUrl: prev.outputUrl } : {}),
    ...(prev.previewUrl && next.previewUrl && take ? { previewUrl: prev.previewUrl } : {}),
  };
}

/** Frames read again (`next`), keeping the URLs their loaded copies (`prev`) had for the same objects. */
export function keepUrlsOf(prev: readonly FrameView[], next: readonly FrameView[]): FrameView[] {
  const old = new Map(prev.map((f) => [f.frame, f]));
  return next.map((f) => keepUrls(old.get(f.frame), f));
}

/** `frames` with each one `fetched` holds replaced by its fetched copy (URLs kept as {@link keepUrls} says). */
export function replaceFrames(frames: readonly FrameView[], fetched: readonly FrameView[]): readonly FrameView[] {
  const byFrame = new Map(fetched.map((f) => [f.frame, f]));
  if (!frames.some((f) => byFrame.has(f.frame))) return frames;
  return frames.map((f) => {
    const n = byFrame.get(f.frame);
    return n ? keepUrls(f, n) : f;
  });
}

/** The completed frames with a colour URL among `colour` and `fetched`, one per frame, in frame order. */
export function mergeColour(colour: readonly FrameView[], fetched: readonly FrameView[]): readonly FrameView[] {
  const byFrame = new Map(colour.map((f) => [f.frame, f]));
  let changed = false;
  for (const f of fetched) {
    if (f.state !== 'completed' || !f.outputUrl) continue;
    byFrame.set(f.frame, keepUrls(byFrame.get(f.frame), f));
    changed = true;
  }
  return changed ? [...byFrame.values()].sort((a, b) => a.frame - b.frame) : colour;
}
