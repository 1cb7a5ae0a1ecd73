/**
 * Delivery: one signed POST of an event to a subscription's URL, logged attempt by attempt, and
 * the BullMQ processor and Worker of the `webhooks` queue around it. The SSRF guard runs again
 * before every attempt and the connection goes to the very addresses it checked (no second DNS
 * lookup), so a name that re-resolves to a private address after the check gains nothing.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { LookupFunction } from 'node:net';
import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { DeliveryAttempt, DeliveryLog } from './delivery-log.ts';
import { failureReason, noAnswerMessage, type DeliveryObserver, type DeliveryReport } from './delivery-report.ts';
import { eventBody, type WebhookEvent } from './events.ts';
import { DeliveryJobError, parseDeliveryJob, WEBHOOK_QUEUE } from './fanout.ts';
import { signatureHeaders } from './signing.ts';
import type { SubscriptionStore, Subscription } from './subscriptions.ts';
import { checkTarget, TargetRefusedError, type CheckedTarget, type Lookup, type ResolvedAddress } from './targets.ts';

export interface DelivererOptions {
  log: DeliveryLog;
  /** Hosts allow-listed for a project (its `webhookAllowHosts` plus WEBHOOK_ALLOW_HOSTS). */
  allowHosts: (project: string) => Promise<readonly string[]>;
  /** Time the receiver has to answer (WEBHOOK_TIMEOUT_MS, default 10 000). */
  timeoutMs?: number;
  /** Default: the system clock (attempt times and signature timestamps). */
  clock?: () => Date;
  /** Default: the system resolver (every address of the host). */
  lookup?: Lookup;
  /**
   * How long to keep trying to log an attempt the receiver accepted while Redis is away (default
   * 120 000 ms). Past it the delivery stands unlogged: an event the receiver took is never
   * posted again because its log entry could not be written.
   */
  logRetryMs?: number;
  /** A log entry that could not be written (Redis away); the delivery's outcome stands. */
  onLogError?: (error: Error, entry: DeliveryAttempt) => void;
}

const USER_AGENT = 'celfarm-webhooks/1';

/** A lookup that answers only with the addresses the guard already checked. */
function pinnedLookup(addresses: ResolvedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) {
      callback(null, addresses.map((a) => ({ address: a.address, family: a.family })));
      return;
    }
    const family = options.family === 6 || options.family === 'IPv6' ? 6 : options.family === 4 || options.family === 'IPv4' ? 4 : 0;
    const a = addresses.find((x) => family === 0 || x.family === family) ?? addresses[0]!;
    callback(null, a.address, a.family);
  };
}

/** POSTs `body` to the checked target; resolves with the HTTP status, rejects on no answer. */
function post(target: CheckedTarget, body: string, headers: Record<string, string>, timeoutMs: number): Promise<number> {
  const { url } = target;
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<number>((resolve, reject) => {
    const req = client.request(
      {
        protocol: url.protocol,
        hostname: target.host,
        port: target.port,
        path: `${url.pathname}${url.search}`,
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: pinnedLookup(target.addresses),
        agent: false,
        ...(url.username ? { auth: `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` } : {}),
      },
      (res) => {
        clearTimeout(timer);
        // Only the status matters; the connection is not reused (agent: false).
        res.destroy();
        resolve(res.statusCode ?? 0);
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(noAnswerMessage(timeoutMs))), timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(body);
  });
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export class WebhookDeliverer {
  private readonly clock: () => Date;

  constructor(private readonly opts: DelivererOptions) {
    this.clock = opts.clock ?? (() => new Date());
  }

  wasDelivered(sub: Subscription, eventId: string): Promise<boolean> {
    return this.opts.log.wasDelivered(sub.project, sub.id, eventId);
  }

  /**
   * One attempt: guard, sign, POST, log. Never throws for the receiver's faults (they are in
   * the result: `delivered`, `status`, `error`, `refused`); only a failure to log reaches the
   * caller.
   */
  async attempt(sub: Subscription, event: WebhookEvent, attempt: number): Promise<DeliveryAttempt> {
    const started = this.clock();
    const t0 = performance.now();
    const body = eventBody(event);
    let result: Omit<DeliveryAttempt, 'at' | 'eventId' | 'type' | 'attempt' | 'durationMs'>;
    try {
      const target = await checkTarget(sub.url, await this.opts.allowHosts(sub.project), this.opts.lookup);
      const headers = {
        ...signatureHeaders(sub.secret, event.id, Math.floor(this.clock().getTime() / 1000), body),
        'content-type': 'application/json',
        'user-agent': USER_AGENT,
      };
      const status = await post(target, body, headers, this.opts.timeoutMs ?? 10_000);
      const delivered = status >= 200 && status < 300;
      result = { status, delivered, ...(delivered ? {} : { error: `HTTP ${status}` }) };
    } catch (e) {
      result = { delivered: false, error: messageOf(e), ...(e instanceof TargetRefusedError ? { refused: true } : {}) };
    }
    const entry: DeliveryAttempt = {
      at: started.toISOString(),
      eventId: event.id,
      type: event.type,
      attempt,
      ...result,
      durationMs: Math.round(performance.now() - t0),
    };
    if (!entry.delivered) {
      // Nothing was accepted: a failure to log may fail the attempt, which is retried anyway.
      await this.opts.log.append(sub.project, sub.id, entry);
      return entry;
    }
    await this.logDelivered(sub, entry);
    return entry;
  }

  /**
   * Logs an accepted delivery, retrying while Redis is away. Throwing here would make BullMQ
   * retry the job and post the event a second time, so past `logRetryMs` the entry is given up.
   */
  private async logDelivered(sub: Subscription, entry: DeliveryAttempt): Promise<void> {
    const until = performance.now() + (this.opts.logRetryMs ?? 120_000);
    for (let wait = 250; ; wait = Math.min(wait * 2, 5_000)) {
      try {
        await this.opts.log.append(sub.project, sub.id, entry);
        return;
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        if (performance.now() + wait > until) {
          this.opts.onLogError?.(error, entry);
          return;
        }
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }
}

export type DeliveryOutcome = DeliveryAttempt | { skipped: string };

export interface DeliveryProcessorOptions {
  /** Told how every run of a job ended (the API's metrics). Default: nobody. */
  observer?: DeliveryObserver;
}

/** Seconds from the event's publication to the end of the attempt that delivered it. */
const latencySeconds = (event: WebhookEvent, a: DeliveryAttempt): number => (Date.parse(a.at) + a.durationMs - Date.parse(event.createdAt)) / 1000;

/**
 * The processor of the `webhooks` queue: a 2xx completes the job; any other answer (or none)
 * throws so BullMQ retries with backoff; a refused target or a bad payload is unrecoverable. A
 * subscription deleted or disabled meanwhile gets nothing.
 */
export function createDeliveryProcessor(
  deliverer: WebhookDeliverer,
  subscriptions: SubscriptionStore,
  options: DeliveryProcessorOptions = {},
): (job: Job) => Promise<DeliveryOutcome> {
  const observer = options.observer;
  return async (job) => {
    // BullMQ retries a thrown job while attempts are left (Job.shouldRetryJob).
    const lastAttempt = job.attemptsMade + 1 >= (job.opts?.attempts ?? 1);
    const failure = (reason: DeliveryReport['reason']): Pick<DeliveryReport, 'outcome' | 'reason'> => ({ outcome: lastAttempt ? 'failed' : 'retrying', reason });
    let data;
    try {
      data = parseDeliveryJob(job.data);
    } catch (e) {
      if (e instanceof DeliveryJobError) {
        // Its project is not trusted either: counted without one.
        observer?.record({ project: '', outcome: 'failed', reason: 'farm' });
        throw new UnrecoverableError(e.message);
      }
      throw e;
    }
    const report = (r: Omit<DeliveryReport, 'project'>) => observer?.record({ project: data.project, ...r });
    let result: DeliveryAttempt;
    try {
      const sub = await subscriptions.get(data.project, data.subscriptionId);
      if (!sub || sub.disabled) {
        report({ outcome: 'skipped' });
        return { skipped: `subscription ${data.subscriptionId} is ${sub ? 'disabled' : 'deleted'}` };
      }
      // A job run again after its process died between the receiver's 2xx and completing the job.
      if (!data.redelivery && (await deliverer.wasDelivered(sub, data.event.id))) {
        report({ outcome: 'skipped' });
        return { skipped: `event ${data.event.id} was already delivered` };
      }
      result = await deliverer.attempt(sub, data.event, job.attemptsMade + 1);
    } catch (e) {
      // Redis away (reading the subscription, logging a failed attempt): retried like any failure.
      report(failure('farm'));
      throw e;
    }
    if (result.delivered) {
      report({ outcome: 'delivered', ...(data.redelivery ? {} : { latencySeconds: latencySeconds(data.event, result) }) });
      return result;
    }
    if (result.refused) {
      report({ outcome: 'failed', reason: 'refused' });
      throw new UnrecoverableError(result.error ?? 'target refused');
    }
    report(failure(failureReason(result)));
    throw new Error(result.error ?? `HTTP ${result.status}`);
  };
}

export interface DeliveryWorkerOptions {
  /** Needs `maxRetriesPerRequest: null` (BullMQ's blocking reads). */
  connection: ConnectionOptions;
  prefix: string;
  /** Deliveries in flight (WEBHOOK_CONCURRENCY, default 8). */
  concurrency?: number;
  /** Connection-level errors; a Worker without an `error` listener would crash the process. */
  onError?: (error: Error) => void;
}

/** The BullMQ Worker of the `webhooks` queue. */
export function startDeliveryWorker(processor: (job: Job) => Promise<DeliveryOutcome>, opts: DeliveryWorkerOptions): Worker {
  const worker = new Worker(WEBHOOK_QUEUE, processor, {
    connection: opts.connection,
    prefix: opts.prefix,
    concurrency: opts.concurrency ?? 8,
  });
  worker.on('error', (e) => opts.onError?.(e));
  return worker;
}
