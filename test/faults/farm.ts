/**
 * The fault suite's farm: the real thing on one machine — redis-server (AOF on), s3rver, the
 * analytic pack, the API and worker processes — plus what faults need that the end-to-end
 * harness does not offer: any number of workers started and SIGKILLed by name, the API and Redis
 * SIGKILLed and restarted on the same port (and Redis on the same AOF), an optional TCP proxy in
 * front of s3rver that can cut storage off for real, and a webhook receiver subscribed to every
 * event of the suite's project. `check()` is the one verdict every scenario asserts.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { EventBus, eventId, type EventType } from '@celfarm/jobs';
import { buildAnalyticPack } from '@celfarm/model-kit';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '@celfarm/pipeline/image/codec';
import { freePort, startNodeProcess, startRedis, startS3, startTcpProxy, type NodeProcess, type RunningRedis, type RunningS3, type TcpProxy } from '@celfarm/services';
import { S3ObjectStore, shotKeys } from '@celfarm/storage';
import { KeyStore } from '@celfarm/tenancy';
import { WEBHOOK_QUEUE } from '@celfarm/webhooks';
import { ROOT, authed, shotForm, type FramePage, type FrameView, type ShotView } from '../harness.ts';
import { WebhookReceiver } from './receiver.ts';

export const PROJECT = 'faults';
const PREFIX = 'faults';
const BUCKET = 'celfarm';
/** How s3rver's filesystem store names an object's bytes: `<key>._S3rver_object`. */
const OBJECT_SUFFIX = '._S3rver_object';

export interface FaultFarmOptions {
  /** Scenario name: log folder `out/faults/<name>/`. */
  name: string;
  workers: number;
  /** Put a {@link TcpProxy} between the farm (API and workers) and s3rver. */
  s3Proxy?: boolean;
  env?: Record<string, string>;
  /** CPU niceness of workers once they are up (see {@link FaultFarm.startWorker}). */
  niceWhenReady?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class FaultFarm {
  readonly workers: NodeProcess[] = [];
  /** Every process started, dead or alive (their output goes to the log folder). */
  private readonly processes: NodeProcess[] = [];
  private workerSeq = 0;
  private apiSeq = 0;
  private stopping?: Promise<void>;
  token = '';
  api!: NodeProcess;
  niceWhenReady?: number;

  private constructor(
    readonly name: string,
    readonly dir: string,
    public redis: RunningRedis,
    readonly s3: RunningS3,
    readonly proxy: TcpProxy | undefined,
    readonly env: Record<string, string>,
    readonly apiUrl: string,
    readonly receiver: WebhookReceiver,
    /** Straight to s3rver (never through the proxy): what the suite checks outputs with. */
    readonly objects: S3ObjectStore,
  ) {}

  static async start(opts: FaultFarmOptions): Promise<FaultFarm> {
    const dir = await mkdtemp(join(tmpdir(), `celfarm-faults-${opts.name}-`));
    const redis = await startRedis(join(dir, 'redis'));
    const s3 = await startS3(join(dir, 's3'), BUCKET);
    const proxy = opts.s3Proxy ? await startTcpProxy({ targetPort: s3.port }) : undefined;
    const packDir = join(dir, 'pack');
    await buildAnalyticPack(packDir);
    const receiver = new WebhookReceiver();
    await receiver.start();
    const apiPort = await freePort();
    const env: Record<string, string> = {
      REDIS_URL: redis.url,
      REDIS_PREFIX: PREFIX,
      S3_ENDPOINT: proxy ? proxy.url : s3.endpoint,
      S3_BUCKET: BUCKET,
      PACK_DIR: packDir,
      API_HOST: '127.0.0.1',
      API_PORT: String(apiPort),
      WORKER_THREADS: '1',
      // As the end-to-end tests: a dead worker's frames are looked for every 4 s.
      LOCK_DURATION_MS: '4000',
      HEARTBEAT_MS: '500',
      RATE_LIMIT_PER_SECOND: '1000',
      RATE_LIMIT_BURST: '1000',
      WEBHOOK_ALLOW_HOSTS: receiver.host,
      WEBHOOK_BACKOFF_MS: '500',
      ...opts.env,
    };
    const objects = new S3ObjectStore({
      endpoint: s3.endpoint, region: 'us-east-1', bucket: BUCKET, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true,
    });
    const farm = new FaultFarm(opts.name, dir, redis, s3, proxy, env, `http://127.0.0.1:${apiPort}`, receiver, objects);
    farm.niceWhenReady = opts.niceWhenReady;
    try {
      await farm.startApi();
      farm.token = await farm.createKey();
      const sub = await farm.call<{ id: string; secret: string }>('POST', '/v1/webhooks', { url: `${receiver.url}/hooks`, events: ['*'], description: 'fault suite' });
      if (sub.status !== 201) throw new Error(`POST /v1/webhooks: ${sub.status} ${JSON.stringify(sub.body)}`);
      receiver.secret = sub.body.secret;
      await Promise.all(Array.from({ length: opts.workers }, () => farm.startWorker()));
    } catch (e) {
      await farm.stop();
      throw e;
    }
    return farm;
  }

  /** Starts the API (again) on its port; resolves once it listens. */
  async startApi(): Promise<NodeProcess> {
    this.api = startNodeProcess(`api-${++this.apiSeq}`, join(ROOT, 'apps/api/src/main.ts'), this.env, ROOT);
    this.processes.push(this.api);
    await this.api.waitFor(/api listening/, 60_000);
    return this.api;
  }

  /**
   * Starts a worker named `w<n>`; with `ready`, resolves once it takes jobs. Its boot time goes
   * to {@link bootSeconds}. With `niceWhenReady`, a worker that is up drops to that CPU niceness,
   * so that on a machine of two cores the workers that are booting are not starved by those that
   * render (on a farm each worker boots on its own host).
   */
  async startWorker(ready = true, opts: { niceWhenReady?: number } = {}): Promise<NodeProcess> {
    const id = `w${++this.workerSeq}`;
    const t0 = performance.now();
    const w = startNodeProcess(id, join(ROOT, 'apps/worker/src/main.ts'), { ...this.env, WORKER_ID: id }, ROOT);
    this.workers.push(w);
    this.processes.push(w);
    const up = w.waitFor(/worker .* ready/, 120_000).then(() => {
      this.bootSeconds.push((performance.now() - t0) / 1000);
      const nice = opts.niceWhenReady ?? this.niceWhenReady;
      if (nice === undefined || w.child.pid === undefined) return;
      try {
        setPriority(w.child.pid, nice);
      } catch {
        // gone already
      }
    });
    if (ready) await up;
    else up.catch(() => undefined); // killed while booting: nothing to record
    return w;
  }

  /** Seconds from spawn to "ready" of every worker that came up. */
  readonly bootSeconds: number[] = [];

  /** Whether `w` printed its ready line (it takes jobs). */
  static isReady(w: NodeProcess): boolean {
    return w.output.some((l) => / ready$/.test(l) && l.startsWith('worker '));
  }

  /** SIGKILLs a worker and drops it from the live list. */
  async killWorker(w: NodeProcess): Promise<void> {
    const i = this.workers.indexOf(w);
    if (i >= 0) this.workers.splice(i, 1);
    await w.kill('SIGKILL');
  }

  worker(name: string | undefined): NodeProcess | undefined {
    return this.workers.find((w) => w.name === name);
  }

  /** SIGKILLs redis-server (its AOF stays in the folder). */
  async killRedis(): Promise<void> {
    const child = this.redis.process;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** Starts redis-server again on the same port and folder (it replays the AOF). */
  async restartRedis(): Promise<void> {
    this.redis = await startRedis(join(this.dir, 'redis'), this.redis.port);
  }

  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const r = await fetch(`${this.apiUrl}${path}`, {
      method,
      headers: authed(this.token, body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  /**
   * Submits a shot of `frames` generated line-art frames (size × size) with a colour reference;
   * returns its id once the API acknowledged it (201).
   */
  async submit(frames: number, settings: Record<string, unknown>, size = 64): Promise<string> {
    const sketches = await Promise.all(Array.from({ length: frames }, (_, i) => encodePng(sketchFrame(size, size, i, frames).image)));
    const reference = await encodePng(halfImage(size, size, COLOURS.red, COLOURS.grey));
    const r = await fetch(`${this.apiUrl}/v1/shots`, {
      method: 'POST',
      headers: authed(this.token),
      body: shotForm({ project: PROJECT, settings: { width: size, height: size, ...settings } }, { reference, frames: sketches }),
    });
    const body = (await r.json()) as ShotView;
    if (r.status !== 201) throw new Error(`submit: ${r.status} ${JSON.stringify(body)}`);
    return body.id;
  }

  /** GET /v1/shots/:id; undefined while the API cannot answer (restarting, Redis away). */
  async view(id: string): Promise<ShotView | undefined> {
    try {
      const r = await this.call<ShotView>('GET', `/v1/shots/${id}`);
      return r.status === 200 ? r.body : undefined;
    } catch {
      return undefined;
    }
  }

  /** Every frame of the shot, from the pages of GET /v1/shots/:id/frames; undefined while the API cannot answer. */
  async frames(id: string): Promise<FrameView[] | undefined> {
    const frames: FrameView[] = [];
    let cursor: string | null = null;
    try {
      do {
        const r: { status: number; body: FramePage } = await this.call<FramePage>('GET', `/v1/shots/${id}/frames?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
        if (r.status !== 200) return undefined;
        frames.push(...r.body.frames);
        cursor = r.body.next;
      } while (cursor);
      return frames;
    } catch {
      return undefined;
    }
  }

  /** One frame of the shot (the page of one after frame − 1); undefined when the API cannot answer. */
  async frame(id: string, frame: number): Promise<FrameView | undefined> {
    try {
      const r = await this.call<FramePage>('GET', `/v1/shots/${id}/frames?limit=1&cursor=${frame - 1}`);
      return r.status === 200 ? r.body.frames.find((f) => f.frame === frame) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Polls the shot until `done` or `timeoutMs`; returns the last view seen (never throws on a
   * timeout: the verdict says what was left unfinished).
   */
  async waitForShot(id: string, done: (s: ShotView) => boolean, timeoutMs: number, intervalMs = 250): Promise<{ shot?: ShotView; timedOut: boolean }> {
    const end = Date.now() + timeoutMs;
    let last: ShotView | undefined;
    while (Date.now() < end) {
      last = (await this.view(id)) ?? last;
      if (last && done(last)) return { shot: last, timedOut: false };
      await sleep(intervalMs);
    }
    return { shot: last, timedOut: true };
  }

  /**
   * Ids of the events whose webhook deliveries are in flight (active jobs of the webhooks queue):
   * read while the delivering process is held (SIGSTOP), they are the deliveries a kill can cut
   * between the receiver's 2xx and their record.
   */
  async deliveriesInFlight(): Promise<Set<string>> {
    const redis = new Redis(this.redis.url, { maxRetriesPerRequest: 2 });
    const queue = new Queue(WEBHOOK_QUEUE, { connection: redis, prefix: PREFIX });
    try {
      const active = await queue.getActive();
      return new Set(active.map((j) => (j.data as { event?: { id?: string } }).event?.id).filter((id): id is string => typeof id === 'string'));
    } finally {
      await queue.close();
      redis.disconnect();
    }
  }

  /** Events of the shot the farm published (the project's event stream in Redis). */
  async published(shotId: string): Promise<{ id: string; type: string; frame?: number }[]> {
    const redis = new Redis(this.redis.url, { maxRetriesPerRequest: 2, lazyConnect: true });
    try {
      await redis.connect();
      const rows = await redis.xrange(new EventBus(redis, PREFIX).streamKey(PROJECT), '-', '+');
      return rows
        .map(([, fields]) => JSON.parse(fields[1]!) as { id: string; type: string; shotId: string; frame?: number })
        .filter((e) => e.shotId === shotId);
    } finally {
      redis.disconnect();
    }
  }

  /**
   * The verdict on finished shots, for every scenario: each shot completed; every frame has
   * exactly one output and one preview object and nothing else sits under outputs/; shot.json
   * exists; frame records agree with the objects (completed ⇔ output exists); every event the
   * farm published, and every event a completed shot must have, reached the receiver exactly
   * once, signed. Waits up to `webhookWaitMs` for deliveries still on their way, then a quiet
   * spell so that a duplicate on its way is counted too.
   */
  async check(shots: { id: string; frames: number }[], opts: CheckOptions = {}): Promise<ShotCheck[]> {
    const views = await Promise.all(shots.map(async (s) => ({ shot: await this.view(s.id), frames: await this.frames(s.id) })));
    const readPublished = () =>
      Promise.all(shots.map((s) => this.published(s.id).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))))));
    // Wait for what can still come: every published event delivered (re-read, as the last ones
    // — shot.completed — may be published just after the state the views show).
    const end = Date.now() + (opts.webhookWaitMs ?? 20_000);
    for (;;) {
      const delivered = new Set(this.receiver.deliveries.map((d) => d.id));
      const published = await readPublished();
      // A finished shot's closing event too, which its finalize publishes just after the state.
      const closed = (p: { type: string }[], i: number) => {
        const state = views[i]!.shot?.state;
        return !state || !['completed', 'failed', 'cancelled'].includes(state) || p.some((e) => e.type === `shot.${state}`);
      };
      if (published.every((p, i) => !(p instanceof Error) && closed(p, i) && p.every((e) => delivered.has(e.id))) || Date.now() > end) break;
      await sleep(500);
    }
    // A quiet spell, so that a duplicate on its way is counted too.
    await sleep(2000);
    const published = await readPublished();
    const out: ShotCheck[] = [];
    for (const [i, s] of shots.entries()) out.push(await this.checkOne(s.id, s.frames, views[i]!.shot, views[i]!.frames, published[i]!, opts.deliveringDied));
    return out;
  }

  private async checkOne(
    id: string,
    frameCount: number,
    shot: ShotView | undefined,
    frameViews: FrameView[] | undefined,
    publishedOrError: { id: string; type: string; frame?: number }[] | Error,
    deliveringDied?: CheckOptions['deliveringDied'],
  ): Promise<ShotCheck> {
    const problems: string[] = [];
    const notes: string[] = [];
    if (!shot) problems.push(`GET /v1/shots/${id} did not answer`);
    else if (shot.state !== 'completed') problems.push(`shot is ${shot.state}${shot.error ? `: ${shot.error.code}: ${shot.error.message.slice(0, 200)}` : ''}`);
    if (!frameViews) problems.push(`GET /v1/shots/${id}/frames did not answer`);

    // Objects, straight from s3rver.
    const keys = shotKeys('', PROJECT, id);
    const { keys: listed, note } = await this.listObjects(keys.outputsPrefix);
    if (note) notes.push(note);
    const outputOf = new Map(Array.from({ length: frameCount }, (_, i) => [keys.output(i + 1), i + 1]));
    const previewOf = new Map(Array.from({ length: frameCount }, (_, i) => [keys.preview(i + 1), i + 1]));
    const outputs = new Set(listed.filter((k) => outputOf.has(k)).map((k) => outputOf.get(k)!));
    const previews = new Set(listed.filter((k) => previewOf.has(k)).map((k) => previewOf.get(k)!));
    const stray = listed.filter((k) => !outputOf.has(k) && !previewOf.has(k));
    const frames = Array.from({ length: frameCount }, (_, i) => i + 1);
    const noOutput = frames.filter((f) => !outputs.has(f));
    const noPreview = frames.filter((f) => !previews.has(f));
    if (noOutput.length) problems.push(`${noOutput.length} frames without an output: ${list(noOutput)}`);
    if (noPreview.length) problems.push(`${noPreview.length} frames without a preview: ${list(noPreview)}`);
    if (stray.length) problems.push(`${stray.length} unexpected objects under outputs/: ${stray.slice(0, 5).join(', ')}`);
    const manifest = (await this.objects.head(keys.manifest)) !== null;
    if (!manifest) problems.push('no shot.json');

    // Records against objects.
    const states: Record<string, number> = {};
    const records = new Map((frameViews ?? []).map((f) => [f.frame, f]));
    for (const f of records.values()) states[f.state] = (states[f.state] ?? 0) + 1;
    if (frameViews && records.size !== frameCount) problems.push(`${records.size} frame records for ${frameCount} frames`);
    const unfinished = [...records.values()].filter((f) => f.state !== 'completed');
    if (unfinished.length) {
      // Grouped by state and error, so 40 frames failed the same way read as one line.
      const groups = new Map<string, number[]>();
      for (const f of unfinished) {
        const why = `${f.state}${f.error ? ` (${f.error.code}: ${f.error.message.slice(0, 100)})` : ''}`;
        groups.set(why, [...(groups.get(why) ?? []), f.frame]);
      }
      const shown = [...groups].map(([why, fs]) => `${why} ×${fs.length}: frames ${list(fs)}`);
      const onDead = unfinished.filter((f) => f.state === 'active' && f.worker && !this.worker(f.worker)).length;
      problems.push(`${unfinished.length} frame records not completed: ${shown.join('; ')}${onDead ? ` (${onDead} active on a dead worker)` : ''}`);
    }
    const completedNoOutput = [...records.values()].filter((f) => f.state === 'completed' && !outputs.has(f.frame)).map((f) => f.frame);
    const outputNotCompleted = [...outputs].filter((f) => records.get(f)?.state !== 'completed').sort((a, b) => a - b);
    const wrongKey = [...records.values()].filter((f) => f.state === 'completed' && f.output !== keys.output(f.frame)).map((f) => f.frame);
    if (completedNoOutput.length) problems.push(`records completed without an output object: frames ${list(completedNoOutput)}`);
    if (outputNotCompleted.length) problems.push(`${outputNotCompleted.length} output objects of frames the records show unfinished: frames ${list(outputNotCompleted)}`);
    if (wrongKey.length) problems.push(`completed records naming another output key: frames ${list(wrongKey)}`);

    // Events: what a completed shot must have told — frame.flagged for every frame its record
    // shows flagged — plus whatever else was published.
    const flaggedFrames = [...records.values()].filter((f) => f.state === 'completed' && (f.qa?.flagged.length ?? 0) > 0).map((f) => f.frame);
    const must: { type: EventType; frame?: number }[] = [
      { type: 'shot.created' },
      { type: 'shot.started' },
      ...frames.map((frame) => ({ type: 'frame.completed' as const, frame })),
      ...flaggedFrames.map((frame) => ({ type: 'frame.flagged' as const, frame })),
      { type: 'shot.completed' },
    ];
    const mustIds = new Map(must.map((e) => [eventId(e.type, id, e.frame), e]));
    const published = publishedOrError instanceof Error ? [] : publishedOrError;
    if (publishedOrError instanceof Error) problems.push(`could not read the published events: ${publishedOrError.message}`);
    const wanted = new Set([...mustIds.keys(), ...published.map((e) => e.id)]);
    const deliveries = this.receiver.of(id);
    const perId = new Map<string, number>();
    for (const d of deliveries) perId.set(d.id, (perId.get(d.id) ?? 0) + 1);
    const label = (eid: string) => {
      const e = mustIds.get(eid) ?? published.find((p) => p.id === eid) ?? deliveries.find((d) => d.id === eid);
      return e ? `${e.type}${e.frame !== undefined ? ` ${e.frame}` : ''}` : eid;
    };
    const missing = published.map((e) => e.id).filter((e) => !perId.has(e));
    // A delivery whose process was killed between the receiver's 2xx and recording it is posted
    // again (at least once, by design). Such a first copy arrived from the second before the kill
    // until the replacement process started (a request written just before the kill reaches the
    // receiver after it: the receiver stamps the end of the body); it is noted, posted at most
    // twice. Any other duplicate is a problem.
    const firstAt = (eid: string) => Math.min(...deliveries.filter((d) => d.id === eid).map((d) => d.at));
    const inFlight = (eid: string) =>
      deliveringDied !== undefined &&
      (deliveringDied.inFlight?.has(eid) || (firstAt(eid) >= deliveringDied.at - 1000 && firstAt(eid) < deliveringDied.replacedAt)) &&
      (perId.get(eid) ?? 0) === 2;
    const repeated = [...perId].filter(([, n]) => n > 1);
    // When copies arrived, relative to the kill (if any), so that a failure says which window it hit.
    const when = (eid: string) => {
      if (!deliveringDied) return '';
      const at = deliveries.filter((d) => d.id === eid).map((d) => `${d.at >= deliveringDied.at ? '+' : ''}${((d.at - deliveringDied.at) / 1000).toFixed(2)} s`);
      return ` (copies at ${at.join(', ')} from the kill; restart at +${((deliveringDied.replacedAt - deliveringDied.at) / 1000).toFixed(2)} s)`;
    };
    const twice = repeated.filter(([e]) => !inFlight(e)).map(([e, n]) => `${label(e)} ×${n}${when(e)}`);
    const killedMidDelivery = repeated.filter(([e]) => inFlight(e)).map(([e, n]) => `${label(e)} ×${n}${when(e)}`);
    if (killedMidDelivery.length) notes.push(`${killedMidDelivery.length} events posted again after the delivering process was killed mid-delivery (first copy between 1 s before the kill and the restart; receivers dedupe on webhook-id): ${killedMidDelivery.join(', ')}`);
    const notPublished = [...mustIds.keys()].filter((e) => !published.some((p) => p.id === e));
    const unknown = [...perId.keys()].filter((e) => !wanted.has(e));
    const badSigs = deliveries.filter((d) => d.badSignature);
    const some = (ids: string[], n = 8) => `${ids.slice(0, n).map(label).join(', ')}${ids.length > n ? ', …' : ''}`;
    if (missing.length) problems.push(`${missing.length} published events never delivered: ${some(missing)}`);
    if (notPublished.length) problems.push(`${notPublished.length} events of a completed shot never published: ${some(notPublished)}`);
    if (twice.length) problems.push(`${twice.length} events delivered more than once: ${twice.slice(0, 8).join(', ')}${twice.length > 8 ? ', …' : ''}`);
    if (unknown.length) problems.push(`${unknown.length} deliveries of events never published: ${unknown.slice(0, 5).map(label).join(', ')}`);
    if (badSigs.length) problems.push(`${badSigs.length} deliveries failed the signature check: ${badSigs[0]!.badSignature}`);

    return {
      shot: id,
      state: shot?.state ?? 'unknown',
      frames: frameCount,
      records: states,
      outputs: outputs.size,
      previews: previews.size,
      manifest,
      events: {
        expected: mustIds.size,
        published: published.length,
        delivered: [...perId.keys()].filter((e) => wanted.has(e)).length,
        deliveries: deliveries.length,
        duplicates: twice.length + killedMidDelivery.length,
      },
      problems,
      notes,
    };
  }

  /**
   * Keys under `prefix`, listed through S3; read from s3rver's folder instead when s3rver cannot
   * list them: it answers 500 to any listing longer than one page (1,000 keys), because its
   * continuation token is DES-encrypted and OpenSSL 3 (Node ≥ 17) has no DES.
   */
  private async listObjects(prefix: string): Promise<{ keys: string[]; note?: string }> {
    try {
      return { keys: (await this.objects.list(prefix)).map((o) => o.key) };
    } catch (e) {
      const files = await readdir(join(this.dir, 's3', BUCKET, prefix), { recursive: true }).catch(() => [] as string[]);
      const keys = files.filter((f) => f.endsWith(OBJECT_SUFFIX)).map((f) => `${prefix}${f.slice(0, -OBJECT_SUFFIX.length)}`);
      const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      return { keys, note: `s3rver could not list ${prefix} (${why}; it cannot page past 1,000 keys on Node ≥ 17), so the objects were counted in its folder` };
    }
  }

  /** Writes every process's output to `out/faults/<name>/`, for a look after a failure. */
  async saveLogs(): Promise<string> {
    const dir = join(ROOT, 'out', 'faults', this.name);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await Promise.all(this.processes.map((p) => writeFile(join(dir, `${p.name}.log`), `${p.output.join('\n')}\n`)));
    return dir;
  }

  /** Kills every process, stops Redis, s3rver, the proxy and the receiver; once, however often called. */
  stop(): Promise<void> {
    this.stopping ??= this.teardown();
    return this.stopping;
  }

  private async teardown(): Promise<void> {
    await this.saveLogs().catch(() => undefined);
    await Promise.all(this.processes.map((p) => p.kill('SIGKILL')));
    await this.proxy?.close();
    await this.receiver.stop();
    this.objects.destroy();
    await this.redis.stop();
    await this.s3.stop();
    // FAULTS_KEEP=1 keeps Redis's AOF and s3rver's objects for a look after a run.
    if (process.env.FAULTS_KEEP) console.log(`${this.name}: farm folder kept at ${this.dir}`);
    else await rm(this.dir, { recursive: true, force: true });
  }

  /** An admin key of the suite's project, made in Redis as the admin command does. */
  private async createKey(): Promise<string> {
    const redis = new Redis(this.redis.url);
    try {
      return (await new KeyStore(redis, PREFIX).create(PROJECT, 'faults', ['submit', 'read', 'admin'])).token;
    } finally {
      redis.disconnect();
    }
  }
}

export interface CheckOptions {
  /** How long to wait for deliveries still on their way (ms, default 20 000). */
  webhookWaitMs?: number;
  /**
   * The process delivering webhooks was killed (scenario e): epoch ms of the kill and of the
   * replacement's start.
   */
  deliveringDied?: {
    at: number;
    replacedAt: number;
    /** Events whose deliveries were in flight when it was killed ({@link FaultFarm.deliveriesInFlight}). */
    inFlight?: ReadonlySet<string>;
  };
}

export interface ShotCheck {
  shot: string;
  state: string;
  frames: number;
  /** Frame records by state. */
  records: Record<string, number>;
  /** Frames with their output PNG / WebP preview in the store. */
  outputs: number;
  previews: number;
  manifest: boolean;
  events: { expected: number; published: number; delivered: number; deliveries: number; duplicates: number };
  problems: string[];
  /** What the check had to work around (printed, not failed on). */
  notes: string[];
}

function list(frames: number[]): string {
  return frames.length > 12 ? `${frames.slice(0, 12).join(', ')}, …` : frames.join(', ');
}
