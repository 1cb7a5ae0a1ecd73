/** Plain-text output: aligned tables, short durations, JSON and API errors on one line. */

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
