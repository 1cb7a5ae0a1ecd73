/** How times, durations and shares read on the dashboard. */

/** "just now", "3 s ago", "5 min ago", "2 h ago", "4 d ago". */
export function ago(iso: string | undefined | null, now = Date.now()): string {
  if (!iso) return '—';
  const s = Math.floor((now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(s)) return '—';
  if (s < 1) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

/** "45 s", "3 min 20 s", "1 h 5 min". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const m = Math.floor((s % 3600) / 60);
  return `${Math.floor(s / 3600)} h${m ? ` ${m} min` : ''}`;
}

/** Whole percent, rounded down, so 100 % means done. */
export function percent(share: number): number {
  return Math.max(0, Math.min(100, Math.floor(share * 100 + 1e-9)));
}

export function dateTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** The ETA cell of a shot. */
export function eta(state: string, seconds: number | null): string {
  if (state === 'completed' || state === 'failed' || state === 'cancelled') return '—';
  if (seconds === null) return state === 'queued' ? 'waiting' : 'estimating…';
  if (seconds < 1) return 'finishing';
  return duration(seconds);
}
