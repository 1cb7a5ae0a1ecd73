/**
 * Shot QA as the dashboard shows it: the scores with their units, whether each is past the
 * threshold it was judged against, and the geometry of the flicker sparkline. Pure.
 */
import type { FrameView, ShotSummary } from './api.ts';

export type FrameQa = NonNullable<FrameView['qa']>;
export type QaScore = FrameQa['flagged'][number];
export type FrameTake = NonNullable<FrameView['takes']>[number];
type Thresholds = Partial<Record<QaScore, number>>;

/** The scores in the order the farm lists them (libs/jobs QA_SCORES). */
export const QA_SCORES = ['palette', 'flickerMean', 'flickerShare', 'lineFidelity'] as const satisfies readonly QaScore[];

export interface ScoreInfo {
  label: string;
  unit: 'ΔE00' | '%';
  /** Where a score is worse: flagged above its threshold, or below it. */
  worse: 'above' | 'below';
  /** What it measures, for a tooltip. */
  what: string;
}

export const SCORE_INFO: Readonly<Record<QaScore, ScoreInfo>> = {
  palette: { label: 'Palette', unit: 'ΔE00', worse: 'above', what: 'Colour distance from the output’s dominant colours to the reference’s palette' },
  flickerMean: { label: 'Flicker', unit: 'ΔE00', worse: 'above', what: 'Mean colour change from the previous frame where the line art did not change' },
  flickerShare: { label: 'Flicker share', unit: '%', worse: 'above', what: 'Share of the unchanged area changing by more than a just-noticeable difference' },
  lineFidelity: { label: 'Line fidelity', unit: '%', worse: 'below', what: 'Share of the sketch’s lines still dark lines in the output' },
};

/**
 * A score as a producer reads it: "3.21 ΔE00", "12.5 %". Absent (not scored yet) reads "—";
 * null (cannot be scored for this frame: the first frame's flicker, a sketch without lines) "n/a".
 */
export function formatScore(score: QaScore, value: number | null | undefined): string {
  if (value === undefined) return '—';
  if (value === null || !Number.isFinite(value)) return 'n/a';
  if (SCORE_INFO[score].unit === '%') {
    // One decimal, dropped when it is .0: 0.05 → "5 %", 0.123 → "12.3 %".
    const pct = Math.round(value * 1000) / 10;
    return `${pct} %`;
  }
  return `${value.toFixed(2)} ΔE00`;
}

export type Judgement = 'past' | 'within' | 'unknown';

/** Whether `value` is past `threshold` in the direction that is worse for `score` (libs/qa's rule: strictly). */
export function judge(score: QaScore, value: number | null | undefined, threshold: number | undefined): Judgement {
  if (value === null || value === undefined || threshold === undefined || !Number.isFinite(value)) return 'unknown';
  const past = SCORE_INFO[score].worse === 'above' ? value > threshold : value < threshold;
  return past ? 'past' : 'within';
}

/** "above 2.50 ΔE00 is flagged", "below 80 % is flagged". */
export function thresholdText(score: QaScore, threshold: number | undefined): string {
  if (threshold === undefined) return 'no threshold';
  return `${SCORE_INFO[score].worse} ${formatScore(score, threshold)} is flagged`;
}

/** The threshold a frame's score was judged against, else the shot's (as resolved at submit). */
export function thresholdOf(score: QaScore, qa: FrameQa | undefined, shot?: Pick<ShotSummary, 'qaThresholds'>): number | undefined {
  return qa?.thresholds[score] ?? (shot?.qaThresholds as Thresholds | undefined)?.[score];
}

/**
 * Each score of a frame's QA with its threshold and judgement. The farm's `flagged` list is the
 * truth for what made the frame flagged; the judgement fills in where it does not speak (no QA yet).
 */
export function scoreRows(qa: FrameQa | undefined, shot?: Pick<ShotSummary, 'qaThresholds'>) {
  return QA_SCORES.map((score) => {
    const value = qa?.scores[score];
    const threshold = thresholdOf(score, qa, shot);
    const judged = judge(score, value, threshold);
    const flagged = qa ? qa.flagged.includes(score) : judged === 'past';
    return { score, value, threshold, flagged, judgement: flagged ? ('past' as const) : judged };
  });
}

export type ReviewStatus = 'needs-review' | 'approved' | 'flagged' | 'clear' | 'unscored';

/** Where a frame stands in review: waiting for a person, approved, flagged (not completed), passed, or not scored. */
export function reviewStatus(f: Pick<FrameView, 'needsReview' | 'review' | 'qa'>): ReviewStatus {
  if (f.review?.state === 'approved') return 'approved';
  if (f.needsReview) return 'needs-review';
  if (!f.qa) return 'unscored';
  return f.qa.flagged.length > 0 ? 'flagged' : 'clear';
}

/** Whether a frame is flagged for flicker (either flicker score past its threshold). */
export const flickerFlagged = (qa: FrameQa | undefined): boolean => !!qa && (qa.flagged.includes('flickerMean') || qa.flagged.includes('flickerShare'));

export interface SparkPoint {
  frame: number;
  value: number;
  x: number;
  y: number;
  /** Flagged for flicker. */
  flagged: boolean;
}

export interface Sparkline {
  /** Frames with a flicker value, in frame order. */
  points: SparkPoint[];
  /** SVG path: a line through consecutive frames, broken where a frame has no value. */
  path: string;
  /** Where the threshold line runs (null without a threshold). */
  thresholdY: number | null;
  /** The value at the top of the box. */
  top: number;
}

export interface SparkBox {
  width: number;
  height: number;
  /** Room kept free on each side so markers are not clipped. */
  pad: number;
}

const round = (n: number) => Math.round(n * 100) / 100;

/**
 * The flicker sparkline: frame k at x ∝ k−1 across the box (so gaps keep their place), flicker
 * mean up from 0 at the bottom to the largest value or 1.25 × the threshold at the top, whichever
 * is higher, so the threshold line always shows below the top.
 */
export function sparkline(frames: readonly Pick<FrameView, 'frame' | 'qa'>[], frameCount: number, box: SparkBox, threshold?: number): Sparkline {
  const measured = frames
    .flatMap((f) => {
      const value = f.qa?.scores.flickerMean;
      return typeof value === 'number' && Number.isFinite(value) ? [{ frame: f.frame, value, flagged: flickerFlagged(f.qa) }] : [];
    })
    .sort((a, b) => a.frame - b.frame);
  const top = Math.max(threshold !== undefined ? threshold * 1.25 : 0, ...measured.map((m) => m.value), 1e-6);
  const innerW = box.width - 2 * box.pad;
  const innerH = box.height - 2 * box.pad;
  const xOf = (frame: number) => round(frameCount <= 1 ? box.width / 2 : box.pad + ((frame - 1) / (frameCount - 1)) * innerW);
  const yOf = (value: number) => round(box.pad + innerH - (Math.min(value, top) / top) * innerH);
  const points = measured.map((m) => ({ ...m, x: xOf(m.frame), y: yOf(m.value) }));
  const path = points.map((p, i) => `${i > 0 && points[i - 1]!.frame === p.frame - 1 ? 'L' : 'M'}${p.x} ${p.y}`).join(' ');
  return { points, path, thresholdY: threshold === undefined ? null : yOf(threshold), top };
}

/** The point nearest to `x` (a click on the sparkline), or undefined when there is none. */
export function nearestPoint(points: readonly SparkPoint[], x: number): SparkPoint | undefined {
  let best: SparkPoint | undefined;
  for (const p of points) if (!best || Math.abs(p.x - x) < Math.abs(best.x - x)) best = p;
  return best;
}

/** The point after (`step` 1) or before (−1) frame `from`; the first or last when nothing is selected. */
export function stepPoint(points: readonly SparkPoint[], from: number | undefined, step: 1 | -1): SparkPoint | undefined {
  if (points.length === 0) return undefined;
  if (from === undefined) return step === 1 ? points[0] : points.at(-1);
  return step === 1 ? (points.find((p) => p.frame > from) ?? points.at(-1)) : ([...points].reverse().find((p) => p.frame < from) ?? points[0]);
}
