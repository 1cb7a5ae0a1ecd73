import { api } from '../api.ts';
import { ago, dateTime, duration } from '../format.ts';
import { Link } from '../router.tsx';
import { Empty, ErrorNote, usePoll, useNow } from '../ui.tsx';

/** `<shot>-<frame>`, `<shot>-prepare`, `<shot>-finalize`, with `-r<n>` for retry rounds. */
function shotOfJob(job: string): string | null {
  return /^(s[a-z0-9]+)-/.exec(job)?.[1] ?? null;
}

/** Frames per hour since the worker started; null while it has been up under a minute. */
function framesPerHour(framesDone: number, startedAt: string, lastSeen: string): number | null {
  const hours = (Date.parse(lastSeen) - Date.parse(startedAt)) / 3_600_000;
  if (!Number.isFinite(hours) || hours < 1 / 60) return null;
  return framesDone / hours;
}

/** The live worker registry, refreshed every two seconds. */
export function WorkersPage() {
  const { data, error } = usePoll(() => api.workers(), 2000);
  const now = useNow(1000);
  const workers = data?.workers ?? [];
  return (
    <main id="main" className="page">
      <header className="page-head">
        <h1>Workers</h1>
        <p className="muted">Workers whose heartbeat is recent; one per GPU. Refreshed every 2 s.</p>
      </header>
      <ErrorNote error={error} title="Could not load workers." />
      {data && workers.length === 0 ? (
        <Empty title="No live workers.">
          <p>
            Start one per GPU with <code>node --import tsx apps/worker/src/main.ts</code>; it appears here on its first heartbeat.
          </p>
        </Empty>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <caption className="sr-only">Live workers</caption>
            <thead>
              <tr>
                <th scope="col">Worker</th>
                <th scope="col">Provider</th>
                <th scope="col">Pack</th>
                <th scope="col">Current job</th>
                <th scope="col">Last heartbeat</th>
                <th scope="col">Up</th>
                <th scope="col" className="num">Frames</th>
                <th scope="col" className="num">Frames / h</th>
              </tr>
            </thead>
            <tbody>
              {workers.map((w) => {
                const shot = w.currentJob ? shotOfJob(w.currentJob) : null;
                const rate = framesPerHour(w.framesDone, w.startedAt, w.lastSeen);
                return (
                  <tr key={w.id} data-worker={w.id}>
                    <td>
                      <span className="mono">{w.id}</span>
                      <div className="muted small">
                        {w.host} · pid {w.pid}
                      </div>
                    </td>
                    <td>{w.provider}</td>
                    <td className="mono small">{w.pack}</td>
                    <td>
                      {w.currentJob ? (
                        shot ? (
                          <Link to={`/shots/${shot}`} className="mono small">
                            {w.currentJob}
                          </Link>
                        ) : (
                          <span className="mono small">{w.currentJob}</span>
                        )
                      ) : (
                        <span className="muted">idle</span>
                      )}
                    </td>
                    <td className="nowrap">
                      <time dateTime={w.lastSeen} title={dateTime(w.lastSeen)}>
                        {ago(w.lastSeen, Math.max(now, Date.parse(w.lastSeen)))}
                      </time>
                    </td>
                    <td className="nowrap">{duration((Math.max(now, Date.parse(w.lastSeen)) - Date.parse(w.startedAt)) / 1000)}</td>
                    <td className="num">{w.framesDone}</td>
                    <td className="num" title={rate === null ? 'Shown after a minute of uptime' : undefined}>
                      {rate === null ? '—' : rate >= 100 ? Math.round(rate) : rate.toFixed(1)}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </main>
  );
}
