/**
 * The API as the dashboard sees it: typed fetches against the same origin, signed in by the
 * HttpOnly `celfarm_session` cookie. Failures throw {@link ApiError} carrying the API's
 * `{error: {code, field, message}}`.
 */

export const SHOT_STATES = ['queued', 'preparing', 'running', 'completed', 'failed', 'cancelled'] as const;
export type ShotState = (typeof SHOT_STATES)[number];
export const TERMINAL: readonly ShotState[] = ['completed', 'failed', 'cancelled'];
export type FrameState = 'waiting' | 'active' | 'completed' | 'failed' | 'cancelled';

export interface ErrorInfo {
  code: string;
  field?: string;
  message: string;
}

export interface Session {
  project: string;
  keyId: string;
  name: string;
  scopes: string[];
}

export interface ShotSummary {
  id: string;
  project: string;
  state: ShotState;
  createdAt: string;
  updatedAt: string;
  settings: Record<string, unknown>;
  seed: number;
  priority: number;
  pack: { id: string; version: string };
  frameCount: number;
  counts: Record<FrameState, number>;
  progress: number;
  etaSeconds: number | null;
  failedFrameShare: number;
  awaitingUploads: boolean;
  round: number;
  error?: ErrorInfo;
}

export interface FrameView {
  frame: number;
  state: FrameState;
  stage?: string;
  step?: number;
  steps?: number;
  attempts: number;
  worker?: string;
  seed: number;
  error?: ErrorInfo;
  input: string;
  inputUrl?: string;
  output?: string;
  outputUrl?: string;
  previewUrl?: string;
}

export interface ShotView extends ShotSummary {
  frames: FrameView[];
}

export interface ShotList {
  shots: ShotSummary[];
  next: string | null;
}

export interface WorkerView {
  id: string;
  host: string;
  pid: number;
  provider: string;
  pack: string;
  currentJob: string | null;
  startedAt: string;
  lastSeen: string;
  framesDone: number;
}

export type QueueDepths = Record<string, Record<string, number>>;

/** One farm event, as `GET /v1/live` forwards it (`event: farm`). */
export interface FarmEvent {
  id: string;
  type: string;
  project: string;
  shotId: string;
  frame?: number;
  createdAt: string;
  data: Record<string, unknown>;
}

/** One shot of the `event: shots` snapshot. `frames` has one letter per frame. */
export interface LiveShot {
  id: string;
  state: ShotState;
  updatedAt: string;
  progress: number;
  etaSeconds: number | null;
  frameCount: number;
  counts: Record<FrameState, number>;
  frames: string;
  active: { frame: number; stage?: string; step?: number; steps?: number; worker?: string }[];
}

export interface LiveSnapshot {
  at: string;
  shots: LiveShot[];
}

export const FRAME_LETTER_STATES: Record<string, FrameState> = {
  w: 'waiting',
  a: 'active',
  c: 'completed',
  f: 'failed',
  x: 'cancelled',
};

/** A webhook subscription of the project (`GET /v1/webhooks`, admin scope). */
export interface Webhook {
  id: string;
  url: string;
  events: string[];
  description?: string;
  createdAt: string;
  disabled: boolean;
}

/** One delivery attempt (`GET /v1/webhooks/:id/deliveries`), newest first. */
export interface DeliveryAttempt {
  at: string;
  eventId: string;
  type: string;
  attempt: number;
  status?: number;
  error?: string;
  durationMs: number;
  delivered: boolean;
  refused?: boolean;
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** Called on any 401: the session ended (expired, signed out elsewhere, key revoked). */
let onUnauthorized: () => void = () => undefined;
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

async function request<T>(method: string, path: string, body?: unknown, opts: { quiet401?: boolean } = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (e) {
    throw new ApiError(0, 'NETWORK', `The farm did not answer (${(e as Error).message}).`);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: described below
  }
  if (!res.ok) {
    const err = (json as { error?: ErrorInfo } | undefined)?.error;
    if (res.status === 401 && !opts.quiet401) onUnauthorized();
    throw new ApiError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? (text.slice(0, 200) || res.statusText), err?.field);
  }
  return json as T;
}

export const api = {
  session: () => request<Session>('GET', '/v1/session', undefined, { quiet401: true }),
  signIn: (key: string) => request<void>('POST', '/v1/session', { key }, { quiet401: true }),
  signOut: () => request<void>('DELETE', '/v1/session', undefined, { quiet401: true }),
  shots: (q: { state?: ShotState; limit?: number; before?: string }) => {
    const params = new URLSearchParams();
    if (q.state) params.set('state', q.state);
    if (q.limit) params.set('limit', String(q.limit));
    if (q.before) params.set('before', q.before);
    return request<ShotList>('GET', `/v1/shots?${params}`);
  },
  shot: (id: string) => request<ShotView>('GET', `/v1/shots/${encodeURIComponent(id)}`),
  cancel: (id: string) => request<ShotView>('POST', `/v1/shots/${encodeURIComponent(id)}/cancel`),
  retry: (id: string) => request<ShotView>('POST', `/v1/shots/${encodeURIComponent(id)}/retry`),
  workers: () => request<{ workers: WorkerView[] }>('GET', '/v1/workers'),
  queues: () => request<{ queues: QueueDepths }>('GET', '/v1/queues'),
  webhooks: () => request<{ webhooks: Webhook[] }>('GET', '/v1/webhooks'),
  deliveries: (id: string, limit = 50) =>
    request<{ deliveries: DeliveryAttempt[] }>('GET', `/v1/webhooks/${encodeURIComponent(id)}/deliveries?limit=${limit}`),
};
