/**
 * What a shot's frame records add up to — frames per state, flagged by shot QA, waiting for a
 * person, failed for a reason a retry can fix, timed — as a handful of integers. The store keeps a
 * shot's tally in one small hash and moves it with every frame write (the difference between the
 * record before and after, in the same script as the write), and the frame states as one letter
 * per frame; the views read those and the few active records, not every record of the shot. Pure.
 */
import { FRAME_LETTERS, FRAME_STATES, type FrameRecord, type FrameState } from './records.ts';

/** Whether shot QA flagged the frame for review (a score past its threshold). */
export const isFlagged = (f: FrameRecord): boolean => (f.qa?.flagged.length ?? 0) > 0;

/** Flagged and not approved: the frame waits for a person (a completed frame only). */
export const needsReview = (f: FrameRecord): boolean => f.state === 'completed' && isFlagged(f) && f.review?.state !== 'approved';

/** A failed frame a new round may render: its failure was not bad input (see ErrorInfo.permanent). */
export const isRetryable = (frame: FrameRecord): boolean => frame.state === 'failed' && frame.error?.permanent !== true;

/**
 * The tally's fields: a count per frame state; `flagged`, `needsReview`, `retryable` frames;
 * `timed`, the completed frames with measured seconds, and `secondsMs`, their sum in whole
 * milliseconds (integers, so that adding and taking away a frame leaves no rounding behind).
 */
export const TALLY_FIELDS = [...FRAME_STATES, 'flagged', 'needsReview', 'retryable', 'timed', 'secondsMs'] as const;
export type TallyField = (typeof TALLY_FIELDS)[number];
export type ShotTally = Record<TallyField, number>;

export const emptyTally = (): ShotTally => Object.fromEntries(TALLY_FIELDS.map((f) => [f, 0])) as ShotTally;

/** Adds one record to `t` (or takes it away, `sign` −1); returns `t`. */
export function countFrame(t: ShotTally, f: FrameRecord, sign: 1 | -1 = 1): ShotTally {
  t[f.state] += sign;
  if (isFlagged(f)) t.flagged += sign;
  if (needsReview(f)) t.needsReview += sign;
  if (isRetryable(f)) t.retryable += sign;
  if (f.state === 'completed' && f.seconds !== undefined) {
    t.timed += sign;
    t.secondsMs += sign * Math.round(f.seconds * 1000);
  }
  return t;
}

export function tallyOf(frames: readonly FrameRecord[]): ShotTally {
  const t = emptyTally();
  for (const f of frames) countFrame(t, f);
  return t;
}

/** What replacing `before` with `after` changes in the shot's tally: the fields that move, and by how much. */
export function tallyDelta(before: FrameRecord, after: FrameRecord): [TallyField, number][] {
  const t = countFrame(countFrame(emptyTally(), after), before, -1);
  return TALLY_FIELDS.filter((f) => t[f] !== 0).map((f) => [f, t[f]]);
}

/** The tally as stored (a Redis hash of decimal strings); null when it is not a whole tally. */
export function parseTally(raw: Record<string, string>): ShotTally | null {
  const t = emptyTally();
  for (const f of TALLY_FIELDS) {
    const n = Number(raw[f]);
    if (raw[f] === undefined || !Number.isInteger(n)) return null;
    t[f] = n;
  }
  return t;
}

export function countsOf(t: ShotTally): Record<FrameState, number> {
  return Object.fromEntries(FRAME_STATES.map((s) => [s, t[s]])) as Record<FrameState, number>;
}

/** The sampled share (0–1) of the active frames that report their sampler steps. */
function sampledShare(active: readonly FrameRecord[]): number {
  let share = 0;
  for (const f of active) if (f.state === 'active' && f.step !== undefined && f.steps) share += Math.min(1, Math.max(0, f.step / f.steps));
  return share;
}

/** Completed frames plus the sampled share of active ones, over the frame count (0–1). */
export function progressOf(frameCount: number, t: ShotTally, active: readonly FrameRecord[]): number {
  if (frameCount <= 0) return 0;
  return Math.min(1, (t.completed + sampledShare(active)) / frameCount);
}

/** ETA in seconds from measured frame times: remaining frames × mean seconds ÷ active workers. */
export function etaOf(t: ShotTally, active: readonly FrameRecord[], workers: number): number | null {
  const remaining = t.waiting + t.active;
  if (remaining === 0) return 0;
  if (t.timed === 0) return null;
  const mean = t.secondsMs / 1000 / t.timed;
  return Math.max(0, ((remaining - sampledShare(active)) * mean) / Math.max(1, workers));
}

/**
 * What a shot's views need of its frames: the tally, the states (one {@link FRAME_LETTERS} letter
 * per frame, frame k at index k−1) and the active records with their sampler progress, in frame
 * order (as the store reads them).
 */
export interface ShotDigest {
  tally: ShotTally;
  states: string;
  active: FrameRecord[];
}

/** The frame states as letters, from records (frame k at index k−1; a frame without a record is left waiting). */
export function statesOf(frames: readonly FrameRecord[], frameCount = frames.length): string {
  const letters = new Array<string>(frameCount).fill(FRAME_LETTERS.waiting);
  for (const f of frames) if (f.frame >= 1 && f.frame <= frameCount) letters[f.frame - 1] = FRAME_LETTERS[f.state];
  return letters.join('');
}

/** The digest of whole records (shots from before the stored tally; tests). */
export function digestOf(frames: readonly FrameRecord[], frameCount = frames.length): ShotDigest {
  return { tally: tallyOf(frames), states: statesOf(frames, frameCount), active: frames.filter((f) => f.state === 'active') };
}

/** Frame numbers (ascending) whose state letter is one of `states`, after frame `after`. */
export function framesIn(states: string, wanted: ReadonlySet<FrameState> | null, after = 0): number[] {
  const out: number[] = [];
  const letters = wanted ? new Set([...wanted].map((s) => FRAME_LETTERS[s])) : null;
  for (let i = Math.max(0, after); i < states.length; i++) if (!letters || letters.has(states[i]!)) out.push(i + 1);
  return out;
}
