/**
 * Plain-text output: aligned tables, short durations, JSON, API errors and settings warnings on one
 * line, and shot QA's scores, review markers and thresholds.
 */
import type { FrameView, QaThresholdsSetting, SettingsWarning, ShotSummary } from '@celfarm/contract';
import { QA_SCORES, SCORE_INFO, type QaScore } from './qa.ts';

type ExternalIds = ShotSummary['externalIds'];
type FrameQa = NonNullable<FrameView['qa']>;

/** Left-aligned columns separated by two spaces; cells are stringified, undefined/null shown as `-`. */
export function table(header: string[], rows: unknown[][]): string {
  const cells = [header, ...rows.map((r) => r.map(cell))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

function cell(v: unknown): string {
  if (v === undefined || v === null || v === '') return '-';
  if (Array.isArray(v)) return v.map(cell).join(',');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** A table of arbitrary records: the preferred columns present in any row, in that order, then the other scalar ones. */
export function recordTable(rows: Record<string, unknown>[], preferred: string[]): string {
  if (rows.length === 0) return '(none)\n';
  const present = (k: string) => rows.some((r) => r[k] !== undefined);
  const cols = preferred.filter(present);
  for (const r of rows) {
    for (const [k, v] of Object.entries(r)) {
      if (!cols.includes(k) && (v === null || typeof v !== 'object' || Array.isArray(v))) cols.push(k);
    }
  }
  return table(cols, rows.map((r) => cols.map((c) => r[c])));
}

/** 75 → `1m15s`, 3725 → `1h02m`; null/undefined → `--`. */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '--';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Pretty JSON with a final newline (what `--json` prints). */
export const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

/** `[CODE] (field): message`: an API or input error on one line. */
export const errorText = (e: { code: string; field?: string; message: string }): string => `[${e.code}]${e.field ? ` (${e.field})` : ''}: ${e.message}`;

/** `(settings.width): width 130 is not a multiple of 64; rendering 128`: a settings warning on one line. */
export const warningText = (w: SettingsWarning): string => `(${w.field}): ${w.message}`;

/** `ABC · sq01 · sh010`: the studio ids given, show first; empty when none. */
export const studioIds = (ids: ExternalIds): string => [ids?.show, ids?.sequence, ids?.shot].filter(Boolean).join(' · ');

/** `"Opening pan" (ABC · sq01)`: a shot's name, quoted, and its studio ids when it has any. */
export function shotTitle(s: { name: string; externalIds?: ExternalIds }): string {
  const ids = studioIds(s.externalIds);
  return `${JSON.stringify(s.name)}${ids ? ` (${ids})` : ''}`;
}

/** A command-line argument as a POSIX shell reads it back (`sh010` as is, `Opening pan` → `'Opening pan'`). */
export const shellArg = (v: string): string => (/^[\w.,:=@%+/-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);

/** At most `max` characters: longer text ends in `…`. */
export const clip = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/**
 * A QA score in a table cell: ΔE00 with two decimals (`3.21`), shares as a percentage (`12.3`),
 * with `!` when the farm flagged it (past its threshold); `n/a` when it cannot be scored for this
 * frame (the first frame's flicker), undefined (shown `-`) when it is not scored (yet).
 */
export function scoreCell(qa: FrameQa | undefined, score: QaScore): string | undefined {
  const value = qa?.scores[score];
  if (value === undefined) return undefined;
  if (value === null) return 'n/a';
  const shown = SCORE_INFO[score].unit === 'share' ? String(Math.round(value * 1000) / 10) : value.toFixed(2);
  return qa!.flagged.includes(score) ? `${shown}!` : shown;
}

/** `needs review` (flagged, not approved), `approved`, or undefined (nothing to review). */
export const reviewMarker = (f: Pick<FrameView, 'needsReview' | 'review'>): string | undefined =>
  f.review?.state === 'approved' ? 'approved' : f.needsReview ? 'needs review' : undefined;

/** `palette > 6, …, lineFidelity < 0.8`: when each score is flagged, in the API's names and units (those given). */
export const thresholdsText = (t: QaThresholdsSetting): string =>
  QA_SCORES.filter((s) => t[s] !== undefined)
    .map((s) => `${s} ${SCORE_INFO[s].worse === 'above' ? '>' : '<'} ${t[s]}`)
    .join(', ');
