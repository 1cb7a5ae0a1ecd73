/**
 * Review of a shot's frames after shot QA: what approving a frame and rendering it again with
 * another seed do to the frame records. Pure; the API applies it (shot-lifecycle.ts).
 */
import { QA_SCORES, type FrameQa, type FrameRecord, type FrameTake } from './records.ts';

/** Flicker compares a frame with the one before: a new take of one invalidates the other's score. */
const FLICKER_SCORES = ['flickerMean', 'flickerShare'] as const;

/**
 * A frame's QA without its flicker against the previous frame (that frame is being rendered
 * again): scored anew once both are completed. Undefined when nothing else is left.
 */
export function withoutFlicker(qa: FrameQa | undefined): FrameQa | undefined {
  if (!qa) return undefined;
  const scores = { ...qa.scores };
  const thresholds = { ...qa.thresholds };
  for (const n of FLICKER_SCORES) {
    delete scores[n];
    delete thresholds[n];
  }
  const flagged = qa.flagged.filter((n) => !(FLICKER_SCORES as readonly string[]).includes(n));
  if (QA_SCORES.every((n) => scores[n] === undefined)) return undefined;
  return { scores, thresholds, flagged };
}

/** Where a re-render copies the current take's images: its output and preview keys for `round`. */
export interface TakeKeys {
  output: string;
  preview?: string;
}

/**
 * The frame's current take as lineage, before a re-render replaces it: `round` is the one that
 * rendered it (0: the shot's first take), its images at `keys` (copied there by the caller).
 */
export function currentTake(f: FrameRecord, keys: TakeKeys, replacedAt: string): FrameTake {
  return {
    round: f.take ?? 0,
    seed: f.seed,
    output: keys.output,
    ...(keys.preview ? { preview: keys.preview } : {}),
    ...(f.qa ? { qa: f.qa } : {}),
    ...(f.review ? { review: f.review } : {}),
    ...(f.seconds !== undefined ? { seconds: f.seconds } : {}),
    replacedAt,
  };
}

/**
 * The record of a frame handed back to render a new take in `round` with `seed`: the completed
 * take (if any) joins `takes`, its scores and review go with it, the frame waits for its job.
 */
export function rerenderPatch(f: FrameRecord, round: number, seed: number, take: FrameTake | null): Partial<FrameRecord> {
  return {
    state: 'waiting',
    seed,
    take: round,
    ...(take ? { takes: [...(f.takes ?? []), take] } : {}),
    qa: undefined,
    review: undefined,
    referenceFrom: undefined,
    output: undefined,
    seconds: undefined,
    error: undefined,
    stage: undefined,
    step: undefined,
    steps: undefined,
    worker: undefined,
  };
}

/**
 * The record of a frame cancelled before its new take rendered: when a re-render had handed it
 * back (its take replaced one in `takes`), it returns to that take — completed, with its seed,
 * the copy of its output kept at the take's key, its scores and review — and the take leaves
 * `takes`, so cancelling a re-render loses no frame. Any other frame is just cancelled (its
 * stage and step say where it stopped).
 * (The next frame's flicker, cleared by the re-render, stays unscored.)
 */
export function cancelledPatch(f: FrameRecord): Partial<FrameRecord> {
  const previous = f.takes?.at(-1);
  if (!previous || f.take === undefined || previous.round >= f.take) return { state: 'cancelled' };
  const takes = f.takes!.slice(0, -1);
  return {
    state: 'completed',
    seed: previous.seed,
    take: previous.round,
    takes: takes.length ? takes : undefined,
    output: previous.output,
    qa: previous.qa,
    review: previous.review,
    seconds: previous.seconds,
    referenceFrom: undefined,
    error: undefined,
    stage: undefined,
    step: undefined,
    steps: undefined,
    worker: undefined,
  };
}

/**
 * With `referenceChain: previous`, the frame whose output frame `frame` renders from: the last
 * frame of the link before its own (links of `link` frames: 1…link, link+1…2·link, …); null in the
 * first link, which renders from the shot's reference.
 */
export function chainSource(frame: number, link: number): number | null {
  const start = Math.floor((frame - 1) / link) * link + 1;
  return start > 1 ? start - 1 : null;
}
