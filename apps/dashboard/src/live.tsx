/**
 * Live updates from `GET /v1/live` (server-sent events): one EventSource for the whole app,
 * shared by the pages through {@link useLive}. `shots` snapshots arrive about every second while
 * something changes, `farm` events as they happen; after a reconnect pages refetch what they show.
 */
import { createContext, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import type { FarmEvent, LiveSnapshot } from './api.ts';

export type LiveStatus = 'connecting' | 'live' | 'offline';

export interface LiveHandlers {
  shots?(snapshot: LiveSnapshot): void;
  farm?(event: FarmEvent): void;
  /** The stream came back after a break: anything may have been missed. */
  reconnected?(): void;
}

interface LiveContext {
  status: LiveStatus;
  subscribe(h: LiveHandlers): () => void;
  last(): LiveSnapshot | null;
}

const Ctx = createContext<LiveContext | null>(null);

export function LiveProvider({ children, onClosed }: { children: ReactNode; onClosed: () => void }) {
  const [status, setStatus] = useState<LiveStatus>('connecting');
  const handlers = useRef(new Set<LiveHandlers>());
  const lastSnapshot = useRef<LiveSnapshot | null>(null);
  const closed = useRef(onClosed);
  closed.current = onClosed;
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    const source = new EventSource('/v1/live');
    let everOpen = false;
    let retry: number | undefined;
    source.onopen = () => {
      setStatus('live');
      if (everOpen || generation > 0) for (const h of handlers.current) h.reconnected?.();
      everOpen = true;
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (401 after sign-out or expiry, or the API restarting): check, then try again.
        setStatus('offline');
        closed.current();
        retry = window.setTimeout(() => setGeneration((g) => g + 1), 5000);
      } else {
        setStatus('connecting');
      }
    };
    source.addEventListener('shots', (m: MessageEvent<string>) => {
      const snapshot = JSON.parse(m.data) as LiveSnapshot;
      lastSnapshot.current = snapshot;
      for (const h of handlers.current) h.shots?.(snapshot);
    });
    source.addEventListener('farm', (m: MessageEvent<string>) => {
      const event = JSON.parse(m.data) as FarmEvent;
      for (const h of handlers.current) h.farm?.(event);
    });
    return () => {
      window.clearTimeout(retry);
      source.close();
    };
  }, [generation]);

  const stable = useMemo(
    () => ({
      subscribe(h: LiveHandlers) {
        handlers.current.add(h);
        return () => {
          handlers.current.delete(h);
        };
      },
      last: () => lastSnapshot.current,
    }),
    [],
  );
  const value = useMemo<LiveContext>(() => ({ status, ...stable }), [status, stable]);
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useLiveStatus(): LiveStatus {
  return useContext(Ctx)?.status ?? 'offline';
}

/** Calls the handlers for as long as the component is mounted (latest handlers win). */
export function useLive(h: LiveHandlers): void {
  const ctx = useContext(Ctx);
  const ref = useRef(h);
  ref.current = h;
  const subscribe = ctx?.subscribe;
  const last = ctx?.last;
  useEffect(() => {
    if (!subscribe) return;
    const off = subscribe({
      shots: (s) => ref.current.shots?.(s),
      farm: (e) => ref.current.farm?.(e),
      reconnected: () => ref.current.reconnected?.(),
    });
    const snapshot = last?.();
    if (snapshot) ref.current.shots?.(snapshot);
    return off;
  }, [subscribe, last]);
}
