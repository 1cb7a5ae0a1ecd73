import { useCallback, useEffect, useState } from 'react';
import { api, setUnauthorizedHandler, type Session } from './api.ts';
import { LiveProvider, useLiveStatus } from './live.tsx';
import { ShotPage } from './pages/Shot.tsx';
import { ShotsPage } from './pages/Shots.tsx';
import { QueuesPage } from './pages/Queues.tsx';
import { SignIn } from './pages/SignIn.tsx';
import { WebhooksPage } from './pages/Webhooks.tsx';
import { WorkersPage } from './pages/Workers.tsx';
import { Link, parseRoute, useLocation, type Route } from './router.tsx';
import { Empty } from './ui.tsx';

type Auth = { state: 'checking' } | { state: 'signed-out'; notice?: string } | { state: 'signed-in'; session: Session };

export function App() {
  const [auth, setAuth] = useState<Auth>({ state: 'checking' });

  const check = useCallback(async (notice?: string) => {
    try {
      setAuth({ state: 'signed-in', session: await api.session() });
    } catch {
      setAuth({ state: 'signed-out', ...(notice ? { notice } : {}) });
    }
  }, []);

  useEffect(() => {
    void check();
    setUnauthorizedHandler(() => setAuth({ state: 'signed-out', notice: 'Your session ended. Sign in again to go on.' }));
  }, [check]);

  if (auth.state === 'checking') return <p className="boot muted">Loading…</p>;
  if (auth.state === 'signed-out') return <SignIn notice={auth.notice} onSignedIn={(session) => setAuth({ state: 'signed-in', session })} />;

  const signOut = async () => {
    try {
      await api.signOut();
    } finally {
      setAuth({ state: 'signed-out', notice: 'Signed out.' });
    }
  };
  return (
    <LiveProvider onClosed={() => void check('Your session ended. Sign in again to go on.')}>
      <Shell session={auth.session} onSignOut={() => void signOut()} />
    </LiveProvider>
  );
}

const NAV: { to: string; label: string; pages: Route['page'][] }[] = [
  { to: '/shots', label: 'Shots', pages: ['shots', 'shot'] },
  { to: '/workers', label: 'Workers', pages: ['workers'] },
  { to: '/queues', label: 'Queues', pages: ['queues'] },
  { to: '/webhooks', label: 'Webhooks', pages: ['webhooks'] },
];

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const { pathname } = useLocation();
  const route = parseRoute(pathname);
  const live = useLiveStatus();
  const title = route.page === 'shot' ? `Shot ${route.id}` : (NAV.find((n) => n.pages.includes(route.page))?.label ?? 'Not found');
  useEffect(() => {
    document.title = `${title} · celfarm`;
  }, [title]);
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="topbar-inner">
          <Link to="/shots" className="brand" aria-label="celfarm, shots">
            <span className="brand-mark" aria-hidden="true" />
            celfarm
          </Link>
          <nav aria-label="Main" className="nav">
            {NAV.map((n) => (
              <Link key={n.to} to={n.to} className="nav-link" aria-current={n.pages.includes(route.page) ? 'page' : undefined}>
                {n.label}
              </Link>
            ))}
          </nav>
          <div className="who">
            <span className={`live live-${live}`} title={live === 'live' ? 'Live updates on' : live === 'connecting' ? 'Connecting to live updates…' : 'Live updates off'}>
              <span className="live-dot" aria-hidden="true" />
              {live === 'live' ? 'Live' : live === 'connecting' ? 'Connecting…' : 'Offline'}
            </span>
            <span className="project" title={`Key ${session.name} (${session.keyId}); scopes: ${session.scopes.join(', ')}`}>
              <strong>{session.project}</strong>
              <span className="muted small"> · {session.name}</span>
            </span>
            <button type="button" className="button button-quiet" onClick={onSignOut}>
              Sign out
            </button>
          </div>
        </div>
      </header>
      {route.page === 'shots' && <ShotsPage />}
      {route.page === 'shot' && <ShotPage key={route.id} id={route.id} />}
      {route.page === 'workers' && <WorkersPage />}
      {route.page === 'queues' && <QueuesPage />}
      {route.page === 'webhooks' && <WebhooksPage />}
      {route.page === 'missing' && (
        <main id="main" className="page">
          <Empty title="There is no such page.">
            <p>
              <Link to="/shots">Go to the shots</Link>
            </p>
          </Empty>
        </main>
      )}
    </>
  );
}
