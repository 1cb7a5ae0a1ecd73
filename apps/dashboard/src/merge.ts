/** Folding live snapshots into what the pages hold. Pure. */
import { FRAME_LETTER_STATES, type FrameView, type LiveShot, type ShotSummary, type ShotView } from './api.ts';

export function mergeSummary<T extends ShotSummary>(shot: T, live: LiveShot | undefined): T {
  if (!live || live.id !== shot.id) return shot;
  return { ...shot, state: live.state, updatedAt: live.updatedAt, progress: live.progress, etaSeconds: live.etaSeconds, counts: live.counts };
}

/**
 * The view with the snapshot's states and sampler steps. `stale` is true when the view now
 * lacks something only a refetch brings: the colour URL of a completed frame, the error of a
 * failed one, or the shot's outcome.
 */
export function mergeView(view: ShotView, live: LiveShot | undefined): { view: ShotView; stale: boolean } {
  if (!live || live.id !== view.id) return { view, stale: false };
  const active = new Map(live.active.map((a) => [a.frame, a]));
  const frames = view.frames.map((f): FrameView => {
    const state = FRAME_LETTER_STATES[live.frames[f.frame - 1] ?? ''] ?? f.state;
    const a = active.get(f.frame);
    if (a) return { ...f, state, stage: a.stage ?? f.stage, step: a.step ?? f.step, steps: a.steps ?? f.steps, worker: a.worker ?? f.worker };
    return state === f.state ? f : { ...f, state };
  });
  const merged = { ...mergeSummary(view, live), frames };
  const stale =
    merged.state !== view.state ||
    frames.some((f) => (f.state === 'completed' && !f.outputUrl) || (f.state === 'failed' && !f.error));
  return { view: merged, stale };
}

/**
 * A refetched view keeps the presigned URLs it already had for unchanged objects, so the
 * browser does not download every thumbnail again (each signature is a new URL).
 */
export function keepUrls(prev: ShotView | null, next: ShotView): ShotView {
  if (!prev || prev.id !== next.id) return next;
  const old = new Map(prev.frames.map((f) => [f.frame, f]));
  return {
    ...next,
    frames: next.frames.map((f) => {
      const o = old.get(f.frame);
      if (!o) return f;
      return {
        ...f,
        ...(o.inputUrl && f.inputUrl && o.input === f.input ? { inputUrl: o.inputUrl } : {}),
        ...(o.outputUrl && f.outputUrl && o.output === f.output ? { outputUrl: o.outputUrl } : {}),
        ...(o.previewUrl && f.previewUrl && o.output === f.output ? { previewUrl: o.previewUrl } : {}),
      };
    }),
  };
}
