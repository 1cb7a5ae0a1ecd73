import { useState } from 'react';
import { api, ApiError, type DeliveryAttempt, type Webhook } from '../api.ts';
import { ago, dateTime } from '../format.ts';
import { Empty, ErrorNote, useNow, usePoll } from '../ui.tsx';

/** Why the webhook routes answered nothing useful, in words; null when it is a real error. */
function unavailable(error: unknown): string | null {
  if (!(error instanceof ApiError)) return null;
  if (error.status === 404 || error.status === 405) return 'This farm does not offer webhooks yet.';
  if (error.status === 403) return 'Webhooks need a key with the admin scope; this key cannot see them.';
  return null;
}

/** The project's webhook subscriptions and, for the chosen one, its latest delivery attempts. */
export function WebhooksPage() {
  const hooks = usePoll(() => api.webhooks(), 10_000);
  const webhooks: Webhook[] = hooks.data?.webhooks ?? [];
  const [chosen, setChosen] = useState<string | null>(null);
  const selected = webhooks.find((w) => w.id === chosen) ?? webhooks[0];
  const why = unavailable(hooks.error);

  return (
    <main id="main" className="page">
      <header className="page-head">
        <h1>Webhook deliveries</h1>
        <p className="muted">Where the farm POSTs its events, and how each delivery went.</p>
      </header>
      {why ? (
        <Empty title={why}>
          <p>
            Webhooks deliver <code>shot.completed</code>, <code>frame.failed</code> and the other farm events to your own services; see the{' '}
            <a href="/docs">API docs</a>.
          </p>
        </Empty>
      ) : (
        <ErrorNote error={hooks.error} title="Could not load webhooks." />
      )}
      {!why && hooks.data && webhooks.length === 0 && (
        <Empty title="No webhooks in this project yet.">
          <p>
            Subscribe a URL with <code>POST /v1/webhooks</code> <code>{'{"url": "https://…", "events": ["*"]}'}</code>; its deliveries show up here.
          </p>
        </Empty>
      )}
      {webhooks.length > 0 && (
        <div className="split">
          <nav aria-label="Webhooks" className="hook-list">
            <ul>
              {webhooks.map((w) => (
                <li key={w.id}>
                  <button type="button" className="hook" aria-current={selected?.id === w.id ? 'true' : undefined} onClick={() => setChosen(w.id)}>
                    <span className="hook-url">{w.url}</span>
                    <span className="muted small">
                      {w.events.join(', ')}
                      {w.disabled ? ' · disabled' : ''}
                    </span>
                  </button>
                </li>
              ))}
            </ul>
          </nav>
          {selected && <Deliveries key={selected.id} hook={selected} />}
        </div>
      )}
    </main>
  );
}

function Deliveries({ hook }: { hook: Webhook }) {
  const { data, error } = usePoll(() => api.deliveries(hook.id), 5000);
  const now = useNow(5000);
  const rows: DeliveryAttempt[] = data?.deliveries ?? [];
  const why = unavailable(error);
  return (
    <section aria-labelledby="deliveries-title" className="deliveries">
      <h2 id="deliveries-title">
        Deliveries to <span className="mono">{hook.url}</span>
      </h2>
      {hook.description && <p className="muted">{hook.description}</p>}
      {why ? <Empty title={why} /> : <ErrorNote error={error} title="Could not load deliveries." />}
      {data && rows.length === 0 && <Empty title="No deliveries yet." >
        <p>They appear as the project's shots send events.</p>
      </Empty>}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table className="table">
            <caption className="sr-only">Latest delivery attempts, newest first</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Event</th>
                <th scope="col">Outcome</th>
                <th scope="col" className="num">
                  Attempt
                </th>
                <th scope="col" className="num">
                  Took
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((d, i) => (
                <tr key={`${d.eventId}-${d.attempt}-${d.at}-${i}`}>
                  <td className="nowrap">
                    <time dateTime={d.at} title={dateTime(d.at)}>
                      {ago(d.at, now)}
                    </time>
                  </td>
                  <td>
                    {d.type}
                    <div className="muted small mono">{d.eventId}</div>
                  </td>
                  <td>
                    <span className={`badge ${d.delivered ? 'badge-completed' : 'badge-failed'}`}>{d.delivered ? 'delivered' : d.refused ? 'refused' : 'failed'}</span>
                    {d.status !== undefined && <span className="mono small"> HTTP {d.status}</span>}
                    {d.error && <div className="small text-failed">{d.error}</div>}
                  </td>
                  <td className="num">{d.attempt}</td>
                  <td className="num nowrap">{d.durationMs} ms</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
