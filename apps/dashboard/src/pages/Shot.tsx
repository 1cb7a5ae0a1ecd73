import { useCallback, useEffect, useRef, useState } from 'react';
import { api, ApiError, FRAME_STATES, TERMINAL, type FrameView, type ShotView } from '../api.ts';
import { ago, dateTime, eta } from '../format.ts';
import { useShotFrames, type FrameFilter } from '../frames.ts';
import { useLive } from '../live.tsx';
import { mergeView } from '../merge.ts';
import { Link } from '../router.tsx';
import { Empty, ErrorNote, ProgressBar, StateBadge, useNow } from '../ui.tsx';
import { FrameCard } from './FrameCard.tsx';
import { Flipbook } from './Flipbook.tsx';
import { ShotQa, type Selection } from './ShotQa.tsx';

/** Milliseconds between refetches of a shot's view (counts and active frames, no frame list): 0.3–2 s. */
const refetchGap = (frames: number): number => Math.min(2000, Math.max(300, frames));

/** The strip's filter, as a producer says it. */
const FILTER_LABELS: Readonly<Record<Exclude<FrameFilter, 'all'>, string>> = {
  waiting: 'Waiting',
  active: 'Rendering',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Cancelled',
  'needs-review': 'Needs review',
  flagged: 'Flagged',
};

/**
 * One shot: header with progress and actions, the flipbook over its colorized frames, shot QA
 * (flicker across the shot, the review of one frame), and the frame strip (sketch beside colour,
 * state, stage, sampler step, error, scores), all kept live.
 */
export function ShotPage({ id }: { id: string }) {
  const [view, setView] = useState<ShotView | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [busy, setBusy] = useState<'cancel' | 'retry' | null>(null);
  const [shown, setShown] = useState<number | undefined>(undefined);
  const [selection, setSelection] = useState<Selection | undefined>(undefined);
  const now = useNow(5000);
  const viewRef = useRef<ShotView | null>(null);
  viewRef.current = view;
  // Its frames come in pages, with the URLs of their images (see frames.ts).
  const frames = useShotFrames(id);
  const framesRef = useRef(frames);
  framesRef.current = frames;

  // One request at a time; asks made meanwhile fold into one more afterwards.
  const fetching = useRef<{ running: boolean; again: boolean }>({ running: false, again: false });
  const refetch = useCallback(
    async () => {
      const f = fetching.current;
      if (f.running) {
        f.again = true;
        return;
      }
      f.running = true;
      try {
        do {
          f.again = false;
          try {
            setView(await api.shot(id));
            setError(null);
          } catch (e) {
            setError(e);
          }
          // Steps and counts come by the snapshot; refetches (outcome, retryable count) are spaced out.
          if (f.again) await new Promise((r) => setTimeout(r, refetchGap(viewRef.current?.frameCount ?? 0)));
        } while (f.again);
      } finally {
        f.running = false;
      }
    },
    [id],
  );

  useEffect(() => {
    setView(null);
    setError(null);
    void refetch();
  }, [refetch]);

  const selected = selection?.frame;
  useEffect(() => framesRef.current.focus(selected), [selected]);

  // Flicker lands on a frame once its neighbour completes, after the frame itself was read: when
  // the shot finishes, the frames are read again so every score is there.
  const finished = view ? TERMINAL.includes(view.state) : undefined;
  const wasFinished = useRef<boolean | undefined>(undefined);
  useEffect(() => {
    if (finished && wasFinished.current === false) framesRef.current.reload();
    wasFinished.current = finished;
  }, [finished]);

  const select = (next: Selection | undefined) => {
    const closing = next === undefined ? selected : undefined;
    setSelection(next);
    // Closing the review: the keyboard focus goes back to that frame's card, when it is listed.
    if (closing !== undefined) document.querySelector<HTMLElement>(`li[data-frame="${closing}"] .frame-review`)?.focus();
  };
  const onApproved = (frame: FrameView) => {
    frames.put(frame);
    frames.reload();
    void refetch();
  };
  const onRerendered = (next: ShotView) => {
    setView(next);
    frames.reload();
  };

  // Presigned URLs expire (PRESIGN_SECONDS): a broken image asks for new ones, at most every 30 s.
  const lastFresh = useRef(0);
  const renewUrls = () => {
    if (Date.now() - lastFresh.current < 30_000) return;
    lastFresh.current = Date.now();
    frames.reload({ freshUrls: true });
  };

  useLive({
    shots: (snapshot) => {
      const current = viewRef.current;
      if (!current) return;
      const live = snapshot.shots.find((s) => s.id === id);
      const { view: merged, stale } = mergeView(current, live);
      if (merged !== current) setView(merged);
      if (stale) void refetch();
      frames.live(live);
    },
    farm: (event) => {
      if (event.shotId === id) void refetch();
    },
    reconnected: () => {
      void refetch();
      frames.reload();
    },
  });

  if (error && !view) {
    const missing = error instanceof ApiError && error.status === 404;
    return (
      <main id="main" className="page">
        <p className="crumbs">
          <Link to="/shots">← Shots</Link>
        </p>
        {missing ? (
          <Empty title={`No shot ${id} in this project.`}>
            <p>It may have been deleted, or it belongs to another project.</p>
          </Empty>
        ) : (
          <ErrorNote error={error} title="Could not load the shot." />
        )}
      </main>
    );
  }
  if (!view) {
    return (
      <main id="main" className="page" aria-busy="true">
        <p className="crumbs">
          <Link to="/shots">← Shots</Link>
        </p>
        <p className="muted">Loading shot {id}…</p>
      </main>
    );
  }

  const done = view.counts.completed;
  const canCancel = !finished;
  // Frames that failed on bad input would fail the same way again: only the others are offered.
  // (Counts move with the live snapshot; the retryable count comes with each refetch.)
  const retryable = Math.min(view.retryableFrames, view.counts.failed);
  const permanent = view.counts.failed - retryable;
  const canRetry = (view.state === 'completed' || view.state === 'failed') && retryable > 0;
  const retryHint = canRetry
    ? undefined
    : permanent > 0 && retryable === 0
      ? `${permanent === 1 ? 'The failed frame' : `All ${permanent} failed frames`} failed on bad input that a retry cannot fix: correct it and submit the shot again`
      : 'Only a finished shot with failed frames can be retried';

  const act = async (what: 'cancel' | 'retry') => {
    if (what === 'cancel' && !window.confirm(`Cancel shot ${view.id}? Frames not yet rendered will not be rendered.`)) return;
    setBusy(what);
    setActionError(null);
    try {
      setView(what === 'cancel' ? await api.cancel(view.id) : await api.retry(view.id));
      frames.reload();
    } catch (e) {
      setActionError(e);
    } finally {
      setBusy(null);
    }
  };

  const mode = typeof view.settings.mode === 'string' ? view.settings.mode : undefined;
  const steps = typeof view.settings.steps === 'number' ? view.settings.steps : undefined;

  return (
    <main id="main" className="page">
      <p className="crumbs">
        <Link to="/shots">← Shots</Link>
      </p>
      <header className="shot-head">
        <div className="shot-title">
          <h1 className={view.name === view.id ? 'mono' : undefined}>{view.name}</h1>
          <StateBadge state={view.state} />
        </div>
        <div className="shot-actions">
          <button type="button" className="button button-danger" disabled={!canCancel || busy !== null} onClick={() => void act('cancel')}>
            {busy === 'cancel' ? 'Cancelling…' : 'Cancel shot'}
          </button>
          <button
            type="button"
            className="button"
            disabled={!canRetry || busy !== null}
            onClick={() => void act('retry')}
            title={retryHint}
          >
            {busy === 'retry' ? 'Retrying…' : `Retry failed${retryable ? ` (${retryable})` : ''}`}
          </button>
        </div>
        <div className={`shot-progress shot-bar-${view.state}`} data-state={view.state}>
          <ProgressBar value={view.progress} label={`Progress of shot ${view.id}`} size="large" />
          <p className="shot-stats">
            <span>
              <strong>{done}</strong> of {view.frameCount} frames
            </span>
            {view.counts.active > 0 && <span>{view.counts.active} rendering</span>}
            {view.counts.failed > 0 && (
              <span className="text-failed">
                {view.counts.failed} failed
                {permanent > 0 && ` (${permanent < view.counts.failed ? `${permanent} ` : ''}not retryable)`}
              </span>
            )}
            {view.counts.cancelled > 0 && <span>{view.counts.cancelled} cancelled</span>}
            {view.needsReview > 0 && <span className="text-review">{view.needsReview} need review</span>}
            <span>ETA {eta(view.state, view.etaSeconds)}</span>
          </p>
          <p className="sr-only" aria-live="polite" aria-atomic="true">
            Shot {view.state}, {done} of {view.frameCount} frames done{view.counts.failed ? `, ${view.counts.failed} failed` : ''}.
          </p>
        </div>
        <dl className="meta">
          {view.name !== view.id && (
            <div>
              <dt>Shot id</dt>
              <dd className="mono">{view.id}</dd>
            </div>
          )}
          {view.externalIds?.show && (
            <div>
              <dt>Show</dt>
              <dd>{view.externalIds.show}</dd>
            </div>
          )}
          {view.externalIds?.sequence && (
            <div>
              <dt>Sequence</dt>
              <dd>{view.externalIds.sequence}</dd>
            </div>
          )}
          {view.externalIds?.shot && (
            <div>
              <dt>Shot code</dt>
              <dd>{view.externalIds.shot}</dd>
            </div>
          )}
          <div>
            <dt>Project</dt>
            <dd>{view.project}</dd>
          </div>
          <div>
            <dt>Created</dt>
            <dd>
              <time dateTime={view.createdAt} title={dateTime(view.createdAt)}>
                {ago(view.createdAt, now)}
              </time>
            </dd>
          </div>
          <div>
            <dt>Priority</dt>
            <dd>{view.priority}</dd>
          </div>
          {mode && (
            <div>
              <dt>Mode</dt>
              <dd>{mode}</dd>
            </div>
          )}
          {steps !== undefined && (
            <div>
              <dt>Steps</dt>
              <dd>{steps}</dd>
            </div>
          )}
          <div>
            <dt>Seed</dt>
            <dd>{view.seed}</dd>
          </div>
          <div>
            <dt>Pack</dt>
            <dd>
              {view.pack.id} {view.pack.version}
            </dd>
          </div>
          {view.round > 0 && (
            <div>
              <dt>Retry round</dt>
              <dd>{view.round}</dd>
            </div>
          )}
          {view.consistency && (
            <div>
              <dt>Consistency</dt>
              <dd data-kind="consistency">{consistencyLabel(view.consistency)}</dd>
            </div>
          )}
        </dl>
        {view.error && (
          <p className="note note-error">
            <strong>{view.error.code}</strong>
            {view.error.field ? ` (${view.error.field})` : ''}: {view.error.message}
          </p>
        )}
        {view.warnings.length > 0 && (
          <div className="note note-info" data-kind="settings-warnings">
            <strong>Settings adjusted at submit</strong> (rendered {view.settings.width}×{view.settings.height}):
            <ul>
              {view.warnings.map((w, i) => (
                <li key={i}>
                  <code>{w.field}</code>: {w.message}
                </li>
              ))}
            </ul>
          </div>
        )}
        {view.awaitingUploads && <p className="note note-info">Waiting for its inputs to be uploaded, then for <code>POST /v1/shots/{view.id}/start</code>.</p>}
        <ErrorNote error={actionError} title="The farm refused:" />
      </header>

      <Flipbook frames={frames.colour} frameCount={view.frameCount} shown={shown} onShown={setShown} onBrokenImage={renewUrls} />

      <ShotQa
        view={view}
        frames={frames}
        selection={selection}
        now={now}
        onSelect={select}
        onApproved={onApproved}
        onRerendered={onRerendered}
        onBrokenImage={renewUrls}
      />

      <section aria-labelledby="strip-title" className="strip-section">
        <div className="strip-head">
          <h2 id="strip-title">Frames</h2>
          <label className="strip-filter">
            <span>Show</span>
            <select value={frames.filter} onChange={(e) => frames.setFilter(e.target.value as FrameFilter)}>
              <option value="all">All frames ({view.frameCount})</option>
              <optgroup label="Shot QA">
                <option value="needs-review">
                  {FILTER_LABELS['needs-review']} ({view.needsReview})
                </option>
                <option value="flagged">
                  {FILTER_LABELS.flagged} ({view.flagged})
                </option>
              </optgroup>
              <optgroup label="State">
                {FRAME_STATES.map((s) => (
                  <option key={s} value={s}>
                    {FILTER_LABELS[s]} ({view.counts[s]})
                  </option>
                ))}
              </optgroup>
            </select>
          </label>
        </div>
        <ErrorNote error={frames.error} title="Could not load the frames." />
        <ol className="strip">
          {frames.strip.map((f) => (
            <FrameCard
              key={f.frame}
              frame={f}
              shot={view}
              reviewing={f.frame === selected}
              onShow={() => setShown(f.frame)}
              onReview={() => select(f.frame === selected ? undefined : { frame: f.frame, fromChart: false })}
              onBrokenImage={renewUrls}
            />
          ))}
        </ol>
        {frames.strip.length === 0 && frames.filter !== 'all' && (
          <p className="muted">{frames.filter === 'needs-review' ? 'No frame needs review.' : `No ${FILTER_LABELS[frames.filter].toLowerCase()} frames.`}</p>
        )}
        {frames.more && (
          <button type="button" className="button strip-more" onClick={frames.loadMore}>
            Show more frames
          </button>
        )}
      </section>
    </main>
  );
}

/** What the shot does to keep its frames alike, in words: `shared noise · palette lock: reference`. */
function consistencyLabel(c: NonNullable<ShotView['consistency']>): string {
  const parts = [
    ...(c.sharedNoise ? ['shared noise'] : []),
    ...(c.paletteLock !== 'off' ? [`palette lock: ${c.paletteLock}`] : []),
    ...(c.referenceChain !== 'off' ? [`reference chain: ${c.referenceChain}${c.chainLink ? ` (links of ${c.chainLink})` : ''}`] : []),
  ];
  return parts.join(' · ') || 'none';
}
