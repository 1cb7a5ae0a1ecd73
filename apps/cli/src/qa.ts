/**
 * Shot QA's scores as the CLI names, reads and shows them: the API's names (`palette`,
 * `flickerMean`, `flickerShare`, `lineFidelity`, taken from the contract's thresholds schema), which
 * way each is worse, and `name=value` threshold lists (`qa thresholds --set`, `submit
 * --qa-threshold`) checked by that schema before anything is sent.
 */
import { qaThresholdsSchema, type QaThresholdsSetting } from '@celfarm/contract';
import { InputError } from './api.ts';

export type QaScore = keyof QaThresholdsSetting;

/** The scores in the API's order. */
export const QA_SCORES = Object.keys(qaThresholdsSchema.shape) as QaScore[];

export interface ScoreInfo {
  /** The frame table's column: short, with `%` where the value is shown as a percentage. */
  column: string;
  /** ΔE00 (0–100) or a share (0–1, shown as a percentage). */
  unit: 'ΔE00' | 'share';
  /** Flagged above its threshold, or below it. */
  worse: 'above' | 'below';
}

export const SCORE_INFO: Readonly<Record<QaScore, ScoreInfo>> = {
  palette: { column: 'palette', unit: 'ΔE00', worse: 'above' },
  flickerMean: { column: 'flicker', unit: 'ΔE00', worse: 'above' },
  flickerShare: { column: 'flicker%', unit: 'share', worse: 'above' },
  lineFidelity: { column: 'lines%', unit: 'share', worse: 'below' },
};

/** `ΔE00 0–100`, `a share 0–1`: what a threshold of this score takes. */
export const rangeText = (score: QaScore): string => (SCORE_INFO[score].unit === 'ΔE00' ? 'ΔE00 0–100' : 'a share 0–1');

/**
 * Thresholds from `name=value` items (`['palette=8', 'lineFidelity=0.5']`; a later one of a name
 * wins), each checked by the contract's schema. A bad item is an input error naming `flag`.
 */
export function parseThresholds(items: readonly string[], flag: string): QaThresholdsSetting {
  const thresholds: QaThresholdsSetting = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq < 0) throw new InputError('INVALID_REQUEST', `${JSON.stringify(item)}: expected name=value, e.g. palette=8`, flag);
    const name = item.slice(0, eq).trim();
    const raw = item.slice(eq + 1).trim();
    if (!(QA_SCORES as string[]).includes(name)) {
      throw new InputError('INVALID_REQUEST', `${JSON.stringify(name)}: unknown score; one of ${QA_SCORES.join(', ')}`, flag);
    }
    const score = name as QaScore;
    const value = Number(raw);
    if (raw === '' || !Number.isFinite(value) || !qaThresholdsSchema.shape[score].safeParse(value).success) {
      throw new InputError('INVALID_REQUEST', `${score}=${raw}: must be ${rangeText(score)}`, flag);
    }
    thresholds[score] = value;
  }
  return thresholds;
}
