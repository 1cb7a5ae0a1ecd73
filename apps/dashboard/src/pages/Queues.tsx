import { api } from '../api.ts';
import { Empty, ErrorNote, usePoll } from '../ui.tsx';

const QUEUES: { name: string; title: string; what: string }[] = [
  { name: 'prepare', title: 'Prepare', what: 'one per shot: builds the reference context, then adds the frames' },
  { name: 'frames', title: 'Frames', what: 'one per frame: the colorization itself' },
  { name: 'shots', title: 'Finalize', what: 'one per shot: decides its outcome once every frame has finished' },
];
const STATES: { key: string; title: string }[] = [
  { key: 'waiting', title: 'Waiting' },
  { key: 'prioritized', title: 'Prioritized' },
  { key: 'waiting-children', title: 'Awaiting frames' },
  { key: 'delayed', title: 'Delayed (retry)' },
  { key: 'active', title: 'Active' },
  { key: 'failed', title: 'Failed' },
  { key: 'completed', title: 'Completed' },
];

/** Job counts per farm queue and state (the whole farm's), refreshed every two seconds. */
export function QueuesPage() {
  const { data, error } = usePoll(() => api.queues(), 2000);
  const queues = data?.queues;
  return (
    <main id="main" className="page">
      <header className="page-head">
        <h1>Queues</h1>
        <p className="muted">Jobs per queue across the whole farm, all projects. Completed and failed jobs are kept for 7 days. Refreshed every 2 s.</p>
      </header>
      <ErrorNote error={error} title="Could not load queue depths." />
      {queues && Object.keys(queues).length === 0 && <Empty title="No queues." />}
      {queues && (
        <div className="table-wrap">
          <table className="table queues-table">
            <caption className="sr-only">Jobs per queue and state</caption>
            <thead>
              <tr>
                <th scope="col">Queue</th>
                <th scope="col" className="num">
                  To do
                </th>
                {STATES.map((s) => (
                  <th key={s.key} scope="col" className="num">
                    {s.title}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {QUEUES.filter((q) => queues[q.name]).map((q) => {
                const c = queues[q.name]!;
                const todo = (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0);
                return (
                  <tr key={q.name} data-queue={q.name}>
                    <th scope="row">
                      {q.title}
                      <div className="muted small">{q.what}</div>
                    </th>
                    <td className="num strong">{todo}</td>
                    {STATES.map((s) => (
                      <td key={s.key} className={`num${s.key === 'failed' && (c[s.key] ?? 0) > 0 ? ' text-failed' : ''}`}>
                        {c[s.key] ?? 0}
                      </td>
                    ))}
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
