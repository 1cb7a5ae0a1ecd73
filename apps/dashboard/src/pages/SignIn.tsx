import { useState, type FormEvent } from 'react';
import { api, ApiError, type Session } from '../api.ts';

/** Paste an API key; the API answers with an HttpOnly session cookie. */
export function SignIn({ onSignedIn, notice }: { onSignedIn: (s: Session) => void; notice?: string }) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const token = key.trim();
    if (!token) {
      setError('Paste an API key first.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api.signIn(token);
      onSignedIn(await api.session());
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) setError('That key was not accepted: it is unknown or revoked.');
      else if (err instanceof ApiError && err.status === 400) setError(`That does not look like an API key (${err.message}).`);
      else setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };

  return (
    <main className="signin" id="main">
      <form className="signin-card" onSubmit={(e) => void submit(e)} aria-labelledby="signin-title" noValidate>
        <div className="brand brand-large" aria-hidden="true">
          <span className="brand-mark" />
          celfarm
        </div>
        <h1 id="signin-title">Sign in to the farm</h1>
        <p className="muted">Paste your project's API key. The key stays in this browser as a session cookie; sign out to forget it.</p>
        {notice && !error && <p className="note note-info">{notice}</p>}
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          name="key"
          type="password"
          autoComplete="off"
          spellCheck={false}
          placeholder="cf_…"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? 'signin-error' : undefined}
          autoFocus
        />
        {error && (
          <p id="signin-error" className="note note-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="button button-primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
