/**
 * A small client of the celfarm REST API for the CLI: every call sends the API key as a bearer
 * token, 429 and 503 answers are retried after their Retry-After, and error bodies
 * (`{error: {code, field?, message}}`) become `ApiError`s. What it sends and reads is typed by
 * the wire contract, @celfarm/contract.
 */
import {
  ApiError,
  FRAME_PAGE_LIMIT,
  TERMINAL_SHOT,
  type CreatedKey,
  type CreateKeyInput,
  type CreateWebhookInput,
  type DeliveryAttempt,
  type DeliveryList,
  type FramePage,
  type FrameState,
  type FrameView,
  type KeyList,
  type KeyView,
  type ListQuery,
  type QaThresholdsSetting,
  type QaThresholdsView,
  type Redelivery,
  type ShotList,
  type ShotView,
  type SubmitView,
  type WebhookCreated,
  type WebhookList,
  type WebhookView,
} from '@celfarm/contract';

export { ApiError };
export type { FrameView, ShotView } from '@celfarm/contract';

/** Which frames of a shot to read: by state, and by shot QA (`GET /v1/shots/{id}/frames`). */
export interface FrameFilter {
  /** Only frames in these states. */
  state?: FrameState[];
  /** Only frames flagged by shot QA (true) or only the others (false). */
  flagged?: boolean;
  /** `needed`: flagged and not approved yet; `approved`: approved as they are. */
  review?: 'needed' | 'approved';
}

/** Frames asked for per page when the CLI reads them all (the API's most). */
const FRAMES_PER_PAGE = FRAME_PAGE_LIMIT.max;

/** Bad input found by the CLI itself, before anything was sent (exit status 2). */
export class InputError extends Error {
  override readonly name = 'InputError';
  constructor(
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export const TERMINAL_STATES: readonly string[] = TERMINAL_SHOT;

export interface ClientOptions {
  api: string;
  key?: string;
  /** Retries of a 429/503 answer (default 5). */
  maxRetries?: number;
  /** Called before waiting out a 429/503. */
  onRetry?: (info: { status: number; waitMs: number; attempt: number }) => void;
  sleep?: (ms: number) => Promise<void>;
}

export interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  form?: FormData;
  headers?: Record<string, string>;
}

const RETRYABLE = new Set([429, 503]);
const MAX_WAIT_MS = 60_000;

/** Milliseconds to wait from a Retry-After header (seconds or an HTTP date); undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const s = header.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.min(MAX_WAIT_MS, Number(s) * 1000);
  const at = Date.parse(s);
  return Number.isNaN(at) ? undefined : Math.min(MAX_WAIT_MS, Math.max(0, at - now));
}

const defaultSleep = (ms: number) => new Promise<void>((res) => setTimeout(res, ms));

/**
 * The API's client. Names typed on the command line (a shot state, scopes, event types) go as
 * the strings they are: the API checks them and answers a 400 naming the field.
 */
export class CelfarmApi {
  readonly api: string;
  private readonly key?: string;
  private readonly maxRetries: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly onRetry?: ClientOptions['onRetry'];

  constructor(opts: ClientOptions) {
    this.api = opts.api.replace(/\/+$/, '');
    this.key = opts.key;
    this.maxRetries = opts.maxRetries ?? 5;
    this.sleep = opts.sleep ?? defaultSleep;
    this.onRetry = opts.onRetry;
  }

  private authHeaders(): Record<string, string> {
    return this.key ? { authorization: `Bearer ${this.key}` } : {};
  }

  /** One API call; resolves with the parsed JSON body (undefined for 204), rejects with ApiError. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<{ status: number; body: T }> {
    const url = new URL(this.api + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json', ...this.authHeaders(), ...opts.headers };
    let body: string | FormData | undefined;
    if (opts.form) body = opts.form;
    else if (opts.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.json);
    }
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(url, { method, headers, body });
      } catch (e) {
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        throw new ApiError(0, 'UNREACHABLE', `cannot reach the API at ${this.api}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
      }
      if (RETRYABLE.has(res.status) && attempt < this.maxRetries) {
        const waitMs = retryAfterMs(res.headers.get('retry-after')) ?? Math.min(MAX_WAIT_MS, 500 * 2 ** attempt);
        await res.body?.cancel();
        this.onRetry?.({ status: res.status, waitMs, attempt: attempt + 1 });
        await this.sleep(waitMs);
        continue;
      }
      const text = await res.text();
      if (!res.ok) throw ApiError.fromAnswer(res.status, text, res.statusText);
      if (!text) return { status: res.status, body: undefined as T };
      try {
        return { status: res.status, body: JSON.parse(text) as T };
      } catch {
        throw new ApiError(res.status, 'BAD_RESPONSE', `${method} ${path}: the API answered something that is not JSON`);
      }
    }
  }

  /** GET of an output: the API key is only sent to the API's own origin (never to presigned S3 URLs). */
  async download(href: string): Promise<Uint8Array> {
    const url = new URL(href, this.api + '/');
    const sameOrigin = url.origin === new URL(this.api).origin;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(url, { headers: sameOrigin ? this.authHeaders() : {} });
      } catch (e) {
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        throw new ApiError(0, 'UNREACHABLE', `cannot fetch ${url.origin}${url.pathname}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
      }
      if (RETRYABLE.has(res.status) && attempt < this.maxRetries) {
        await res.body?.cancel();
        await this.sleep(retryAfterMs(res.headers.get('retry-after')) ?? Math.min(MAX_WAIT_MS, 500 * 2 ** attempt));
        continue;
      }
      if (!res.ok) {
        const text = await res.text();
        throw new ApiError(res.status, 'DOWNLOAD_FAILED', `GET ${url.origin}${url.pathname}: ${res.status} ${text.slice(0, 200).trim() || res.statusText}`);
      }
      return new Uint8Array(await res.arrayBuffer());
    }
  }

  // Shots

  async submitShot(form: FormData, idempotencyKey?: string): Promise<{ created: boolean; shot: SubmitView }> {
    const r = await this.request<SubmitView>('POST', '/v1/shots', { form, headers: idempotencyKey ? { 'idempotency-key': idempotencyKey } : {} });
    return { created: r.status === 201, shot: r.body };
  }

  async shot(id: string): Promise<ShotView> {
    return (await this.request<ShotView>('GET', `/v1/shots/${encodeURIComponent(id)}`)).body;
  }

  /** One page of a shot's frames, with the URLs of their images. */
  async framePage(id: string, query: FrameFilter & { cursor?: string; limit?: number } = {}): Promise<FramePage> {
    const q = {
      state: query.state?.join(','),
      flagged: query.flagged === undefined ? undefined : String(query.flagged),
      review: query.review,
      cursor: query.cursor,
      limit: query.limit,
    };
    return (await this.request<FramePage>('GET', `/v1/shots/${encodeURIComponent(id)}/frames`, { query: q })).body;
  }

  /** Every frame of a shot (those `filter` keeps), in frame order, page after page. */
  async frames(id: string, filter: FrameFilter = {}): Promise<FrameView[]> {
    const frames: FrameView[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.framePage(id, { ...filter, ...(cursor ? { cursor } : {}), limit: FRAMES_PER_PAGE });
      frames.push(...page.frames);
      cursor = page.next ?? undefined;
    } while (cursor);
    return frames;
  }

  /** One frame of a shot (`GET /v1/shots/{id}/frames/{frame}`); an ApiError 404 when it has no such frame. */
  async frame(id: string, frame: number): Promise<FrameView> {
    return (await this.request<FrameView>('GET', `/v1/shots/${encodeURIComponent(id)}/frames/${frame}`)).body;
  }

  /** Approves a completed frame's take as it is (shot QA): it no longer needs review. Idempotent. */
  async approve(id: string, frame: number): Promise<FrameView> {
    return (await this.request<FrameView>('POST', `/v1/shots/${encodeURIComponent(id)}/frames/${frame}/approve`)).body;
  }

  /** Renders one frame of a finished shot again (a new round), with `seed` or a random one; the take it replaces is kept. */
  async rerender(id: string, frame: number, seed?: number): Promise<ShotView> {
    const body = seed === undefined ? {} : { seed };
    return (await this.request<ShotView>('POST', `/v1/shots/${encodeURIComponent(id)}/frames/${frame}/rerender`, { json: body })).body;
  }

  async shots(query: Partial<Omit<ListQuery, 'state'>> & { state?: string }): Promise<ShotList> {
    return (await this.request<ShotList>('GET', '/v1/shots', { query })).body;
  }

  async shotAction(id: string, action: 'cancel' | 'retry' | 'start'): Promise<ShotView> {
    return (await this.request<ShotView>('POST', `/v1/shots/${encodeURIComponent(id)}/${action}`)).body;
  }

  async deleteShot(id: string): Promise<void> {
    await this.request<void>('DELETE', `/v1/shots/${encodeURIComponent(id)}`);
  }

  // Shot QA thresholds of the project (setting them: admin scope)

  async qaThresholds(): Promise<QaThresholdsView> {
    return (await this.request<QaThresholdsView>('GET', '/v1/qa/thresholds')).body;
  }

  /** Replaces what the project set (`{}` clears it). */
  async setQaThresholds(thresholds: QaThresholdsSetting): Promise<QaThresholdsView> {
    return (await this.request<QaThresholdsView>('PUT', '/v1/qa/thresholds', { json: thresholds })).body;
  }

  // API keys (admin scope)

  async createKey(body: Omit<CreateKeyInput, 'scopes'> & { scopes: string[] }): Promise<CreatedKey> {
    return (await this.request<CreatedKey>('POST', '/v1/keys', { json: body })).body;
  }

  async keys(): Promise<KeyView[]> {
    return (await this.request<KeyList>('GET', '/v1/keys')).body.keys;
  }

  async revokeKey(id: string): Promise<void> {
    await this.request<void>('DELETE', `/v1/keys/${encodeURIComponent(id)}`);
  }

  // Webhooks (admin scope)

  async createWebhook(body: Omit<CreateWebhookInput, 'events'> & { events: string[] }): Promise<WebhookCreated> {
    return (await this.request<WebhookCreated>('POST', '/v1/webhooks', { json: body })).body;
  }

  async webhooks(): Promise<WebhookView[]> {
    return (await this.request<WebhookList>('GET', '/v1/webhooks')).body.webhooks;
  }

  async deleteWebhook(id: string): Promise<void> {
    await this.request<void>('DELETE', `/v1/webhooks/${encodeURIComponent(id)}`);
  }

  async deliveries(id: string): Promise<DeliveryAttempt[]> {
    return (await this.request<DeliveryList>('GET', `/v1/webhooks/${encodeURIComponent(id)}/deliveries`)).body.deliveries;
  }

  async redeliver(id: string, eventId: string): Promise<Redelivery> {
    return (await this.request<Redelivery>('POST', `/v1/webhooks/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(eventId)}/redeliver`)).body;
  }

  async ping(id: string): Promise<DeliveryAttempt> {
    return (await this.request<DeliveryAttempt>('POST', `/v1/webhooks/${encodeURIComponent(id)}/ping`)).body;
  }
}
