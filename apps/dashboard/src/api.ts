/**
 * The API as the dashboard sees it: typed fetches against the same origin, signed in by the
 * HttpOnly `celfarm_session` cookie. Failures throw {@link ApiError} carrying the API's
 * `{error: {code, field, message}}`. Every type on the wire is the contract's (@celfarm/contract).
 */
import {
  ApiError,
  type DeliveryList,
  type FrameView,
  type FramePage,
  type FrameQuery,
  type QueueDepths,
  type ShotList,
  type ShotState,
  type ShotView,
  type WebhookList,
  type WhoAmI,
  type WorkerList,
} from '@celfarm/contract';

export { ApiError, FRAME_LETTER_STATES, FRAME_PAGE_LIMIT, FRAME_STATES, rerenderRequestSchema, SHOT_STATES, TERMINAL_SHOT as TERMINAL } from '@celfarm/contract';
export type {
  DeliveryAttempt,
  FarmEvent,
  FramePage,
  FrameState,
  FrameView,
  LiveShot,
  LiveSnapshot,
  ShotList,
  ShotState,
  ShotSummary,
  ShotView,
  WebhookView as Webhook,
  WhoAmI as Session,
} from '@celfarm/contract';

/** The frames query, as `GET /v1/shots/{id}/frames` takes it (`limit` has a default there). */
export type FramesRequest = Partial<FrameQuery>;

const framePath = (id: string, frame: number) => `/v1/shots/${encodeURIComponent(id)}/frames/${frame}`;

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
  if (!res.ok) {
    if (res.status === 401 && !opts.quiet401) onUnauthorized();
    throw ApiError.fromAnswer(res.status, text, res.statusText);
  }
  try {
    return (text ? JSON.parse(text) : undefined) as T;
  } catch {
    throw new ApiError(res.status, 'BAD_RESPONSE', `${method} ${path}: the farm answered something that is not JSON.`);
  }
}

export const api = {
  session: () => request<WhoAmI>('GET', '/v1/session', undefined, { quiet401: true }),
  signIn: (key: string) => request<void>('POST', '/v1/session', { key }, { quiet401: true }),
  signOut: () => request<void>('DELETE', '/v1/session', undefined, { quiet401: true }),
  shots: (q: { state?: ShotState; limit?: number; before?: string; q?: string }) => {
    const params = new URLSearchParams();
    if (q.state) params.set('state', q.state);
    if (q.q) params.set('q', q.q);
    if (q.limit) params.set('limit', String(q.limit));
    if (q.before) params.set('before', q.before);
    return request<ShotList>('GET', `/v1/shots?${params}`);
  },
  shot: (id: string) => request<ShotView>('GET', `/v1/shots/${encodeURIComponent(id)}`),
  /** A page of a shot's frames, with the URLs of their images. */
  frames: (id: string, q: FramesRequest) => {
    const params = new URLSearchParams();
    if (q.state?.length) params.set('state', q.state.join(','));
    if (q.flagged !== undefined) params.set('flagged', String(q.flagged));
    if (q.review) params.set('review', q.review);
    if (q.cursor) params.set('cursor', q.cursor);
    if (q.limit) params.set('limit', String(q.limit));
    return request<FramePage>('GET', `/v1/shots/${encodeURIComponent(id)}/frames?${params}`);
  },
  cancel: (id: string) => request<ShotView>('POST', `/v1/shots/${encodeURIComponent(id)}/cancel`),
  retry: (id: string) => request<ShotView>('POST', `/v1/shots/${encodeURIComponent(id)}/retry`),
  /** Approves a frame's take as it is (shot QA review); 409 while the frame is not completed. */
  approve: (id: string, frame: number) => request<FrameView>('POST', `${framePath(id, frame)}/approve`),
  /** Renders a completed or failed frame again with `seed` (default: a new random one); its take so far is kept. */
  rerender: (id: string, frame: number, seed?: number) => request<ShotView>('POST', `${framePath(id, frame)}/rerender`, seed === undefined ? {} : { seed }),
  /** Where the shot's colour reference is read (the API streams it to the session). */
  referenceUrl: (id: string) => `/v1/shots/${encodeURIComponent(id)}/inputs/reference`,
  workers: () => request<WorkerList>('GET', '/v1/workers'),
  queues: () => request<QueueDepths>('GET', '/v1/queues'),
  webhooks: () => request<WebhookList>('GET', '/v1/webhooks'),
  deliveries: (id: string, limit = 50) =>
    request<DeliveryList>('GET', `/v1/webhooks/${encodeURIComponent(id)}/deliveries?limit=${limit}`),
};
