/** Small shared pieces: state badges, progress bars, notices, and ticking/polling hooks. */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { ApiError } from './api.ts';
import { percent } from './format.ts';

export function StateBadge({ state }: { state: string }) {
  return <span className={`badge badge-${state}`}>{state}</span>;
}

/** A progress bar with its percentage beside it; `label` names it for screen readers. */
export function ProgressBar({ value, label, size = 'normal' }: { value: number; label: string; size?: 'normal' | 'large' | 'small' }) {
  const pct = percent(value);
  return (
    <div className={`progress progress-${size}`}>
      <div className="progress-track" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct}>
        <div className={`progress-fill${pct === 100 ? ' progress-done' : ''}`} style={{ width: `${pct}%` }} />
      </div>
      {size !== 'small' && <span className="progress-text">{pct}%</span>}
    </div>
  );
}

export function ErrorNote({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof ApiError ? error.code : undefined;
  return (
    <div className="note note-error" role="alert">
      {title && <strong>{title} </strong>}
      {message}
      {code && <span className="note-code"> ({code})</span>}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <p className="empty-title">{title}</p>
      {children && <div className="empty-body">{children}</div>}
    </div>
  );
}

/** Re-renders every `ms` (for "3 s ago" labels); returns the current time. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(t);
  }, [ms]);
  return now;
}

/**
 * Loads with `fn` at once and then every `ms` while mounted (and the tab is visible); a slow
 * answer is never overtaken by an older one. Returns the data, the last error and a reload.
 */
export function usePoll<T>(fn: () => Promise<T>, ms: number): { data: T | undefined; error: unknown; reload: () => void } {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>(null);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const run = async () => {
      if (document.visibilityState !== 'hidden') {
        try {
          const d = await fnRef.current();
          if (stopped) return;
          setData(d);
          setError(null);
        } catch (e) {
          if (stopped) return;
          setError(e);
        }
      }
      if (!stopped) timer = window.setTimeout(() => void run(), ms);
    };
    void run();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [ms, tick]);
  return { data, error, reload: () => setTick((t) => t + 1) };
}
