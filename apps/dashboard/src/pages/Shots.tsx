import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { api, ApiError, SHOT_STATES, type ShotList, type ShotState, type ShotSummary } from '../api.ts';
import { ago, dateTime, eta } from '../format.ts';
import { useLive } from '../live.tsx';
import { mergeSummary } from '../merge.ts';
import { Link, navigate, useLocation } from '../router.tsx';
import { Empty, ErrorNote, ProgressBar, StateBadge, useNow } from '../ui.tsx';

const PAGE_SIZE = 25;
const SHOT_ID = /^s[a-z0-9]{8,}$/;
/** The list is searched once typing pauses this long. */
const SEARCH_DELAY_MS = 250;
/** Farm events after which a listed shot's row is read again. */
const FINISHED_EVENTS: ReadonlySet<string> = new Set(['shot.completed', 'shot.failed', 'shot.cancelled']);

/** `MOON · sq020 · sh010`: a shot's studio ids, as one line. */
const studioIds = (s: ShotSummary): string => [s.externalIds?.show, s.externalIds?.sequence, s.externalIds?.shot].filter(Boolean).join(' · ');

/**
 * The project's shots, newest first: state tabs, search by name, studio id or id (on the farm:
 * `GET /v1/shots?q=`), cursor paging, live progress.
 */
export function ShotsPage() {
  const { search } = useLocation();
  const stateParam = search.get('state');
  const state = SHOT_STATES.includes(stateParam as ShotState) ? (stateParam as ShotState) : undefined;
  // Cursors of the pages before this one; the first page has none.
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const before = cursors[cursors.length - 1];
  const [list, setList] = useState<ShotList | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [query, setQuery] = useState('');
  // What the farm is asked for: the box's text once typing pauses.
  const [q, setQ] = useState('');
  const [lookup, setLookup] = useState<{ id: string; shot: ShotSummary | null } | null>(null);
  const now = useNow(5000);
  const seq = useRef(0);
  const unknownLive = useRef(new Set<string>());

  const load = useCallback(async () => {
    const mine = ++seq.current;
    try {
      const l = await api.shots({ ...(state ? { state } : {}), ...(q ? { q } : {}), limit: PAGE_SIZE, ...(before ? { before } : {}) });
      if (mine !== seq.current) return;
      setList(l);
      setError(null);
    } catch (e) {
      if (mine === seq.current) setError(e);
    } finally {
      if (mine === seq.current) setLoading(false);
    }
  }, [state, before, q]);

  useEffect(() => {
    setLoading(true);
    void load();
  }, [load]);

  useEffect(() => {
    const t = window.setTimeout(() => setQ(query.trim()), SEARCH_DELAY_MS);
    return () => window.clearTimeout(t);
  }, [query]);

  // Back to the first page when the filter or the search changes.
  useEffect(() => setCursors([undefined]), [state, q]);

  useLive({
    shots: (snapshot) => {
      const byId = new Map(snapshot.shots.map((s) => [s.id, s]));
      setList((l) => (l ? { ...l, shots: l.shots.map((s) => mergeSummary(s, byId.get(s.id))) } : l));
      setLookup((f) => (f?.shot ? { ...f, shot: mergeSummary(f.shot, byId.get(f.shot.id)) } : f));
      // A shot the first page does not show yet (just submitted): reload once for it.
      if (before || !list) return;
      const shown = new Set(list.shots.map((s) => s.id));
      const fresh = snapshot.shots.filter((s) => !shown.has(s.id) && !unknownLive.current.has(s.id) && (!state || s.state === state));
      if (fresh.length) {
        for (const s of fresh) unknownLive.current.add(s.id);
        void load();
      }
    },
    farm: (event) => {
      if (event.type === 'shot.created' && !before) void load();
      // How many of a shot's frames need review (shot QA) comes with the list, not the snapshot.
      else if (FINISHED_EVENTS.has(event.type) && list?.shots.some((s) => s.id === event.shotId)) void load();
    },
    reconnected: () => void load(),
  });

  // A whole shot id finds its shot even beyond what a search looks at.
  const id = q.toLowerCase();
  useEffect(() => {
    if (!SHOT_ID.test(id) || list?.shots.some((s) => s.id === id)) {
      setLookup(null);
      return;
    }
    let stale = false;
    api.shot(id).then(
      (shot) => !stale && setLookup({ id, shot }),
      (e: unknown) => !stale && setLookup(e instanceof ApiError && e.status === 404 ? { id, shot: null } : null),
    );
    return () => {
      stale = true;
    };
  }, [id, list]);

  const rows = lookup?.shot ? [lookup.shot] : (list?.shots ?? []);

  const setState = (s: ShotState | undefined) => navigate(s ? `/shots?state=${s}` : '/shots');
  const submitSearch = (e: FormEvent) => {
    e.preventDefault();
    const target = lookup?.shot ?? (rows.length === 1 ? rows[0] : undefined);
    if (target) navigate(`/shots/${target.id}`);
  };

  return (
    <main id="main" className="page">
      <header className="page-head">
        <h1>Shots</h1>
        <form className="search" role="search" onSubmit={submitSearch}>
          <label htmlFor="shot-search">Find a shot</label>
          <input
            id="shot-search"
            type="search"
            placeholder="name, show, sequence, shot or id"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
            spellCheck={false}
            autoComplete="off"
          />
        </form>
      </header>

      <div className="tabs" role="group" aria-label="Show shots in state">
        {[undefined, ...SHOT_STATES].map((s) => (
          <button key={s ?? 'all'} type="button" className="tab" aria-pressed={state === s} onClick={() => setState(s)}>
            {s ?? 'all'}
          </button>
        ))}
      </div>

      <ErrorNote error={error} title="Could not load shots." />
      {lookup && !lookup.shot && <p className="note note-info">No shot {lookup.id} in this project.</p>}

      {!loading && rows.length === 0 && !error ? (
        <Empty title={q ? `No ${state ? `${state} ` : ''}shot matches “${q}”${list?.next ? ' among the newest' : ''}.` : state ? `No ${state} shots.` : 'No shots yet.'}>
          {q && list?.next && <p>The search stops after the newest few thousand shots: “Older →” searches on.</p>}
          {!q && !state && (
            <p>
              Submit one with the CLI or <code>POST /v1/shots</code> (see the <a href="/docs">API docs</a>); it shows up here as it renders.
            </p>
          )}
        </Empty>
      ) : (
        <div className="table-wrap">
          <table className="table shots-table" aria-busy={loading}>
            <caption className="sr-only">
              Shots, newest first{state ? `, ${state} only` : ''}
              {q ? `, matching “${q}”` : ''}
            </caption>
            <thead>
              <tr>
                <th scope="col">Shot</th>
                <th scope="col">State</th>
                <th scope="col" className="col-progress">Progress</th>
                <th scope="col">Frames</th>
                <th scope="col">ETA</th>
                <th scope="col">Created</th>
                <th scope="col" className="num">Priority</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((s) => (
                <tr key={s.id} data-shot={s.id}>
                  <td>
                    <Link to={`/shots/${s.id}`} className={s.name === s.id ? 'mono' : undefined}>
                      {s.name}
                    </Link>
                    {s.name !== s.id && <div className="mono muted shot-id">{s.id}</div>}
                    {studioIds(s) && <div className="muted shot-studio-ids">{studioIds(s)}</div>}
                  </td>
                  <td>
                    <StateBadge state={s.state} />
                  </td>
                  <td className={`col-progress shot-bar-${s.state}`}>
                    <ProgressBar value={s.progress} label={`Progress of shot ${s.id}`} />
                  </td>
                  <td className="nowrap">
                    {s.counts.completed}/{s.frameCount}
                    {s.counts.failed > 0 && <span className="text-failed"> · {s.counts.failed} failed</span>}
                    {s.needsReview > 0 && <span className="text-review" data-count="needs-review"> · {s.needsReview} need review</span>}
                  </td>
                  <td className="nowrap">{eta(s.state, s.etaSeconds)}</td>
                  <td className="nowrap">
                    <time dateTime={s.createdAt} title={dateTime(s.createdAt)}>
                      {ago(s.createdAt, now)}
                    </time>
                  </td>
                  <td className="num">{s.priority}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      {(cursors.length > 1 || list?.next) && (
      <nav className="pager" aria-label="Pages of shots">
        <button type="button" className="button" disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
          ← Newer
        </button>
        <span className="muted">Page {cursors.length}</span>
        <button type="button" className="button" disabled={!list?.next} onClick={() => list?.next && setCursors((c) => [...c, list.next!])}>
          Older →
        </button>
      </nav>
      )}
    </main>
  );
}
