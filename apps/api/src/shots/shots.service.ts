/**
 * Shots: submit (multipart, existing keys, presigned uploads), start, view, list, cancel, retry
 * and delete. Every input is validated before anything is stored or enqueued; the API creates
 * the shot record and the prepare job, the workers do the rest.
 */
import type { Readable } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import type { Config } from '@celfarm/config';
import {
  TERMINAL_SHOT,
  frameSeed,
  newShotId,
  type FarmQueues,
  type FrameRecord,
  type ShotRecord,
  type ShotStore,
} from '@celfarm/jobs';
import type { FarmMetrics } from '@celfarm/metrics';
import { decodeImage } from '@celfarm/pipeline/image/codec';
import type { PackManifest } from '@celfarm/pipeline/pack/schema';
import { resolveSettings } from '@celfarm/pipeline/settings';
import { projectPrefix, shotKeys, type ObjectStore, type ShotKeys } from '@celfarm/storage';
import type { EventPublisher } from '@celfarm/webhooks';
import { ApiError, badRequest, missingInput, notFound, tooLarge } from '../core/api-error.ts';
import { forbidden } from '../auth/principal.ts';
import { mapLimit } from '../core/concurrency.ts';
import { presignsObjectUrls } from '../core/object-urls.ts';
import { LIMITS } from '../core/limits.ts';
import { CLOCK, CONFIG, FARM_QUEUES, METRICS, OBJECT_STORE, PACK, RANDOM, SHOT_STORE } from '../core/tokens.ts';
import { EVENT_PUBLISHER } from '../webhooks/webhooks.tokens.ts';
import { IMAGE_KEY, checkKeyScope, sha256, sniffContentType, type ShotForm } from './inputs.ts';
import { checkPackServes } from '@celfarm/pipeline/requirements';
import { inputField, peek, shotFilePath, type FrameFileKind, type ShotFile } from './shot-files.ts';
import { shotSummary, shotView } from './shot-view.ts';
import {
  formRequestSchema,
  jsonSubmitSchema,
  type FormRequest,
  type ListQuery,
  type ShotList,
  type ShotView,
  type SubmitView,
  type Upload,
} from './shots.dto.ts';

export interface SubmitResult {
  /** False when the Idempotency-Key matched an earlier submit (that shot is returned). */
  created: boolean;
  view: SubmitView;
}

/** A submit's request fields with the project settled: the caller's own. */
type OwnedRequest = FormRequest & { project: string };

interface NewShot {
  id: string;
  request: OwnedRequest;
  seed: number;
  inputs: ShotRecord['inputs'];
  awaitingUploads: boolean;
  referenceSha256?: string;
  backgroundSha256?: string;
  sketchSha256?: string[];
}

/** Decodes run on libuv's pool (sharp); a few at a time keeps memory bounded. */
const DECODE_CONCURRENCY = 4;
const IO_CONCURRENCY = 16;

@Injectable()
export class ShotsService {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SHOT_STORE) private readonly store: ShotStore,
    @Inject(FARM_QUEUES) private readonly queues: FarmQueues,
    @Inject(OBJECT_STORE) private readonly objects: ObjectStore,
    @Inject(PACK) private readonly pack: PackManifest,
    @Inject(METRICS) private readonly metrics: FarmMetrics,
    @Inject(CLOCK) private readonly clock: () => Date,
    @Inject(RANDOM) private readonly random: () => number,
    @Inject(EVENT_PUBLISHER) private readonly events: EventPublisher,
  ) {
    this.presign = presignsObjectUrls(config);
  }

  /** Presigned store URLs in views and upload answers; else paths on this API (S3_PRESIGN). */
  private readonly presign: boolean;

  /**
   * Multipart submit: images arrive in the request, are decoded, then stored at the shot's keys.
   * `owner` is the caller's project (every method takes it): the request may name only that one.
   */
  async submitForm(form: ShotForm, owner: string, idempotencyKey?: string): Promise<SubmitResult> {
    if (form.request === undefined) throw missingInput('request', 'required: a JSON field with project, settings, priority');
    let json: unknown;
    try {
      json = JSON.parse(form.request);
    } catch (e) {
      throw badRequest('request', `not valid JSON (${(e as Error).message})`);
    }
    const request = owned(formRequestSchema.parse(json), owner);
    const replay = await this.replay(request.project, idempotencyKey);
    if (replay) return replay;
    const seed = this.resolveSeed(request.settings);
    if (!form.reference) throw missingInput('reference');
    if (form.frames.length === 0) throw missingInput('frames', 'required: at least one frames file');
    this.checkFrameCount(form.frames.length, 'frames');

    const images: [string, Uint8Array][] = [
      ['reference', form.reference],
      ...(form.background ? [['background', form.background] as [string, Uint8Array]] : []),
      ...form.frames.map((b, i): [string, Uint8Array] => [`frames[${i}]`, b]),
    ];
    await mapLimit(images, DECODE_CONCURRENCY, ([field, bytes]) => this.decode(bytes, field));

    const id = this.newId();
    const keys = this.keysOf(request.project, id);
    const objects: [string, Uint8Array][] = [
      [keys.reference, form.reference],
      ...(form.background ? [[keys.background, form.background] as [string, Uint8Array]] : []),
      ...form.frames.map((b, i): [string, Uint8Array] => [keys.frameInput(i + 1), b]),
    ];
    try {
      await mapLimit(objects, IO_CONCURRENCY, ([key, bytes]) => this.objects.put(key, bytes, sniffContentType(bytes)));
    } catch (e) {
      await this.discardObjects(keys);
      throw e;
    }
    return this.finishSubmit(
      {
        id,
        request,
        seed,
        inputs: {
          reference: keys.reference,
          ...(form.background ? { background: keys.background } : {}),
          frames: form.frames.map((_, i) => keys.frameInput(i + 1)),
        },
        awaitingUploads: false,
        referenceSha256: sha256(form.reference),
        ...(form.background ? { backgroundSha256: sha256(form.background) } : {}),
        sketchSha256: form.frames.map(sha256),
      },
      [],
      idempotencyKey,
    );
  }

  /** JSON submit: inputs are existing objects under the project's prefix, or presigned uploads. */
  async submitJson(body: unknown, owner: string, idempotencyKey?: string): Promise<SubmitResult> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw badRequest('body', 'expected a JSON object (application/json) or multipart/form-data');
    }
    const request = owned(jsonSubmitSchema.parse(body), owner);
    const replay = await this.replay(request.project, idempotencyKey);
    if (replay) return replay;
    const seed = this.resolveSeed(request.settings);

    const id = this.newId();
    const keys = this.keysOf(request.project, id);
    const scope = projectPrefix(this.config.S3_PREFIX, request.project);
    const uploads: { field: string; key: string }[] = [];
    const existing: { field: string; key: string }[] = [];

    const image = (input: { key?: string; upload?: true }, field: string, own: string): string => {
      if (input.key !== undefined) {
        checkKeyScope(input.key, scope, `${field}.key`);
        existing.push({ field: `${field}.key`, key: input.key });
        return input.key;
      }
      uploads.push({ field, key: own });
      return own;
    };
    const reference = image(request.reference, 'reference', keys.reference);
    const background = request.background ? image(request.background, 'background', keys.background) : undefined;

    let frames: string[];
    const f = request.frames;
    if (f.keys) {
      this.checkFrameCount(f.keys.length, 'frames.keys');
      f.keys.forEach((key, i) => checkKeyScope(key, scope, `frames.keys[${i}]`));
      f.keys.forEach((key, i) => existing.push({ field: `frames.keys[${i}]`, key }));
      frames = f.keys;
    } else if (f.prefix !== undefined) {
      checkKeyScope(f.prefix, scope, 'frames.prefix');
      const listed = (await this.objects.list(f.prefix)).filter((o) => IMAGE_KEY.test(o.key));
      if (listed.length === 0) throw missingInput('frames.prefix', `no images (.png, .jpg, .jpeg, .webp) under ${f.prefix}`);
      this.checkFrameCount(listed.length, 'frames.prefix');
      for (const o of listed) this.checkObjectSize(o.size, 'frames.prefix', o.key);
      frames = listed.map((o) => o.key);
    } else {
      const n = f.upload!;
      this.checkFrameCount(n, 'frames.upload');
      frames = Array.from({ length: n }, (_, i) => keys.frameInput(i + 1));
      frames.forEach((key, i) => uploads.push({ field: `frames[${i}]`, key }));
    }

    await mapLimit(existing, IO_CONCURRENCY, async ({ field, key }) => {
      const head = await this.objects.head(key);
      if (!head) throw missingInput(field, `no object at ${key}`);
      this.checkObjectSize(head.size, field, key);
    });

    return this.finishSubmit(
      { id, request, seed, inputs: { reference, ...(background ? { background } : {}), frames }, awaitingUploads: uploads.length > 0 },
      uploads,
      idempotencyKey,
    );
  }

  /** Presigned flow: checks the uploaded objects (present, decodable), then enqueues the shot. */
  async start(id: string, owner: string): Promise<ShotView> {
    const shot = await this.mustGet(id, owner);
    if (!shot.awaitingUploads) return this.viewOf(shot);
    if (shot.state !== 'queued') throw new ApiError(409, 'STATE_CONFLICT', `shot ${id} is ${shot.state}; it can no longer start`);
    const keys = this.keysOf(shot.project, shot.id);
    const own = (key: string) => key.startsWith(keys.inputsPrefix);
    const checks: { field: string; key: string; frame?: number }[] = [];
    if (own(shot.inputs.reference)) checks.push({ field: 'reference', key: shot.inputs.reference });
    if (shot.inputs.background && own(shot.inputs.background)) checks.push({ field: 'background', key: shot.inputs.background });
    shot.inputs.frames.forEach((key, i) => own(key) && checks.push({ field: `frames[${i}]`, key, frame: i + 1 }));

    const hashes = await mapLimit(checks, DECODE_CONCURRENCY, async ({ field, key }) => {
      const bytes = await this.objects.get(key);
      if (!bytes) throw missingInput(field, `not uploaded yet (PUT it to its upload URL; key ${key})`);
      this.checkObjectSize(bytes.length, field, key);
      await this.decode(bytes, field);
      return sha256(bytes);
    });
    const hashOf = (field: string) => hashes[checks.findIndex((c) => c.field === field)];
    const frameHashes = checks.flatMap((c, i) => (c.frame !== undefined ? [{ frame: c.frame, sketchSha256: hashes[i]! }] : []));
    const updated = await this.store.update(
      id,
      {
        state: 'queued',
        awaitingUploads: false,
        ...(hashOf('reference') ? { referenceSha256: hashOf('reference') } : {}),
        ...(hashOf('background') ? { backgroundSha256: hashOf('background') } : {}),
      },
      { from: ['queued'] },
    );
    if (!updated) throw notFound('shot', id);
    await mapLimit(frameHashes, IO_CONCURRENCY, (h) => this.store.setFrame(id, h.frame, { sketchSha256: h.sketchSha256 }));
    await this.enqueue(updated);
    return this.viewOf(updated);
  }

  /**
   * One of the shot's images, to stream to its owner: the object its record names (outputs and
   * previews of completed frames only), with the content type its bytes show. 404 when absent.
   */
  async openFile(id: string, owner: string, file: ShotFile): Promise<{ body: Readable; contentType: string; name: string }> {
    const shot = await this.mustGet(id, owner);
    const key = await this.fileKey(shot, file);
    const body = key === undefined ? null : await this.objects.getStream(key);
    if (!body || key === undefined) throw new ApiError(404, 'NOT_FOUND', `shot ${id} has no ${describeFile(file)}`);
    try {
      const contentType = sniffContentType(await peek(body));
      return { body, contentType, name: key.slice(key.lastIndexOf('/') + 1) };
    } catch (e) {
      body.destroy();
      throw e;
    }
  }

  /**
   * An input uploaded through the API (the `upload` submit style without presigned URLs): only
   * while the shot awaits its uploads, only to the shot's own input keys. `start` checks it.
   */
  async upload(id: string, owner: string, file: ShotFile, bytes: Uint8Array): Promise<void> {
    const shot = await this.mustGet(id, owner);
    const field = inputField(file);
    if (!shot.awaitingUploads || shot.state !== 'queued') {
      throw new ApiError(409, 'STATE_CONFLICT', `shot ${id} is ${shot.awaitingUploads ? shot.state : 'not awaiting uploads'}; its inputs can no longer change`, field);
    }
    const key = await this.fileKey(shot, file);
    if (key === undefined) throw new ApiError(404, 'NOT_FOUND', `shot ${id} has no ${describeFile(file)}`);
    if (!key.startsWith(this.keysOf(shot.project, shot.id).inputsPrefix)) {
      throw new ApiError(409, 'STATE_CONFLICT', `the ${field} of shot ${id} is the existing object ${key}; there is nothing to upload`, field);
    }
    this.checkObjectSize(bytes.length, field, key);
    await this.objects.put(key, bytes, sniffContentType(bytes));
  }

  async view(id: string, owner: string): Promise<ShotView> {
    return this.viewOf(await this.mustGet(id, owner));
  }

  /** The caller's shots only; naming another project is refused. */
  async list(query: ListQuery, owner: string): Promise<ShotList> {
    if (query.project !== undefined && query.project !== owner) throw forbidden(`this key belongs to project ${owner}`, 'project');
    const { shots, next } = await this.store.list({
      limit: query.limit,
      project: owner,
      ...(query.state ? { state: query.state } : {}),
      ...(query.before ? { before: query.before } : {}),
    });
    const workers = await this.liveWorkers();
    const summaries = await mapLimit(shots, IO_CONCURRENCY, async (s) => shotSummary(s, await this.store.frames(s.id), workers));
    return { shots: summaries, next };
  }

  /**
   * Cancels a shot: pending jobs are removed and waiting frames marked cancelled; active frames
   * stop at their next step (workers poll the shot state). Idempotent on a cancelled shot.
   */
  async cancel(id: string, owner: string): Promise<ShotView> {
    const shot = await this.mustGet(id, owner);
    if (shot.state === 'cancelled') return this.viewOf(shot);
    const cancelled = await this.store.update(id, { state: 'cancelled' });
    if (!cancelled) throw notFound('shot', id);
    const numbers = Array.from({ length: shot.frameCount }, (_, i) => i + 1);
    await this.queues.removePending(id, numbers, shot.round);
    const frames = await this.store.frames(id);
    await mapLimit(
      frames.filter((f) => f.state === 'waiting'),
      IO_CONCURRENCY,
      (f) => this.store.setFrame(id, f.frame, { state: 'cancelled' }, ['waiting']),
    );
    await this.events.publish('shot.cancelled', { project: shot.project, shotId: id, round: shot.round }, { state: 'cancelled', previousState: shot.state });
    return this.viewOf(cancelled);
  }

  /** Re-runs the failed frames of a finished shot as a new round (job ids carry the round). */
  async retry(id: string, owner: string): Promise<ShotView> {
    const shot = await this.mustGet(id, owner);
    const failed = (await this.store.frames(id)).filter((f) => f.state === 'failed').map((f) => f.frame);
    if (failed.length === 0) throw new ApiError(409, 'NOTHING_TO_RETRY', `shot ${id} has no failed frames`);
    if (shot.state !== 'failed' && shot.state !== 'completed') {
      throw new ApiError(409, 'STATE_CONFLICT', `shot ${id} is ${shot.state}; failed frames can be retried once the shot has finished`);
    }
    const round = shot.round + 1;
    const reopened = await this.store.update(id, { state: 'running', round, error: undefined }, { from: ['failed', 'completed'] });
    if (!reopened) throw notFound('shot', id);
    await mapLimit(failed, IO_CONCURRENCY, (frame) =>
      this.store.setFrame(
        id,
        frame,
        { state: 'waiting', error: undefined, stage: undefined, step: undefined, steps: undefined, worker: undefined },
        ['failed'],
      ),
    );
    await this.queues.addFrameFlow({ shotId: id, project: shot.project }, failed, shot.priority, round);
    await this.events.publish('shot.started', { project: shot.project, shotId: id, round }, { state: 'running', round, frames: failed });
    return this.viewOf(reopened);
  }

  /** Cancels (when still running), then deletes the shot's objects and records. */
  async remove(id: string, owner: string): Promise<void> {
    const shot = await this.mustGet(id, owner);
    if (!TERMINAL_SHOT.includes(shot.state)) {
      try {
        await this.cancel(id, owner);
      } catch (e) {
        // Finished meanwhile: nothing left to stop.
        if (!(e instanceof Error && e.name === 'StateConflictError')) throw e;
      }
    }
    await this.discardObjects(this.keysOf(shot.project, id));
    await this.store.delete(id);
  }

  // ---------------------------------------------------------------------------------------

  private async finishSubmit(shot: NewShot, uploads: { field: string; key: string }[], idempotencyKey?: string): Promise<SubmitResult> {
    const { record, created } = await this.createRecord(shot, idempotencyKey);
    if (!created) {
      // Lost a race with a concurrent submit carrying the same key: answer with the first shot.
      await this.discardObjects(this.keysOf(shot.request.project, shot.id));
      return { created: false, view: await this.submitView(record) };
    }
    if (!record.awaitingUploads) {
      try {
        await this.enqueue(record);
      } catch (e) {
        await this.store.delete(record.id);
        await this.discardObjects(this.keysOf(record.project, record.id));
        throw e;
      }
    }
    this.metrics.shotsSubmitted.inc();
    await this.events.publish(
      'shot.created',
      { project: record.project, shotId: record.id, round: record.round },
      { state: record.state, frameCount: record.frameCount, priority: record.priority, awaitingUploads: record.awaitingUploads },
    );
    return { created: true, view: await this.submitView(record, uploads) };
  }

  private async createRecord(s: NewShot, idempotencyKey?: string): Promise<{ record: ShotRecord; created: boolean }> {
    const now = this.clock().toISOString();
    const record: ShotRecord = {
      id: s.id,
      project: s.request.project,
      state: 'queued',
      createdAt: now,
      updatedAt: now,
      settings: s.request.settings,
      seed: s.seed,
      priority: s.request.priority,
      pack: { id: this.pack.id, version: this.pack.version },
      frameCount: s.inputs.frames.length,
      inputs: s.inputs,
      failedFrameShare: s.request.failedFrameShare ?? this.config.FAILED_FRAME_SHARE,
      awaitingUploads: s.awaitingUploads,
      round: 0,
      ...(idempotencyKey ? { idempotencyKey } : {}),
      ...(s.referenceSha256 ? { referenceSha256: s.referenceSha256 } : {}),
      ...(s.backgroundSha256 ? { backgroundSha256: s.backgroundSha256 } : {}),
    };
    const frames: FrameRecord[] = s.inputs.frames.map((_, i) => ({
      frame: i + 1,
      state: 'waiting',
      attempts: 0,
      seed: frameSeed(s.seed, i + 1),
      ...(s.sketchSha256?.[i] ? { sketchSha256: s.sketchSha256[i] } : {}),
    }));
    const r = await this.store.create(record, frames);
    if (r.created) return { record, created: true };
    const first = await this.store.get(r.id);
    if (!first) throw new ApiError(409, 'STATE_CONFLICT', `Idempotency-Key ${idempotencyKey} belongs to a shot that is being deleted`, 'Idempotency-Key');
    return { record: first, created: false };
  }

  /** The first shot of (project, Idempotency-Key), answered without touching anything else. */
  private async replay(project: string, idempotencyKey?: string): Promise<SubmitResult | null> {
    if (!idempotencyKey) return null;
    const id = await this.store.idempotent(project, idempotencyKey);
    const shot = id ? await this.store.get(id) : null;
    return shot ? { created: false, view: await this.submitView(shot) } : null;
  }

  /** The shot view plus presigned PUTs for inputs still to upload (again on a replay). */
  private async submitView(shot: ShotRecord, uploads?: { field: string; key: string }[]): Promise<SubmitView> {
    const view = await this.viewOf(shot);
    if (!shot.awaitingUploads) return view;
    const own = this.keysOf(shot.project, shot.id).inputsPrefix;
    const pending = uploads ?? [
      ...(shot.inputs.reference.startsWith(own) ? [{ field: 'reference', key: shot.inputs.reference }] : []),
      ...(shot.inputs.background?.startsWith(own) ? [{ field: 'background', key: shot.inputs.background }] : []),
      ...shot.inputs.frames.flatMap((key, i) => (key.startsWith(own) ? [{ field: `frames[${i}]`, key }] : [])),
    ];
    const contentType = 'image/png';
    const signed = await mapLimit(pending, IO_CONCURRENCY, async ({ field, key }): Promise<Upload> => ({
      field,
      key,
      method: 'PUT',
      // Through the API (with the caller's key) unless the store's own signatures guard it.
      url: this.presign ? await this.objects.presignPut(key, this.config.PRESIGN_SECONDS, contentType) : shotFilePath(shot.id, uploadFile(field)),
      headers: { 'Content-Type': contentType },
    }));
    return { ...view, uploads: signed };
  }

  private async viewOf(shot: ShotRecord): Promise<ShotView> {
    const [frames, workers] = await Promise.all([this.store.frames(shot.id), this.liveWorkers()]);
    const done = frames.filter((f) => f.state === 'completed' && f.output);
    const keys = this.keysOf(shot.project, shot.id);
    const link = async (frame: number, kind: FrameFileKind, key: string) => [frame, await this.linkTo(shot.id, { kind, frame }, key)] as const;
    const urls = await mapLimit(done, IO_CONCURRENCY, (f) => link(f.frame, 'output', f.output!));
    // Sketch inputs too (the dashboard's frame strip); none while they are still being uploaded.
    const inputs = shot.awaitingUploads ? [] : shot.inputs.frames.map((key, i) => ({ frame: i + 1, key }));
    const inputUrls = await mapLimit(inputs, IO_CONCURRENCY, (f) => link(f.frame, 'input', f.key));
    // The worker writes a WebP preview next to each output (outputs/previews/<frame>.webp).
    const previewUrls = await mapLimit(done, IO_CONCURRENCY, (f) => link(f.frame, 'preview', keys.preview(f.frame)));
    return shotView(shot, frames, workers, new Map(urls), new Map(inputUrls), new Map(previewUrls));
  }

  /** Where a client fetches one of the shot's images: a presigned GET, or its path on this API. */
  private linkTo(shotId: string, file: ShotFile, key: string): Promise<string> | string {
    return this.presign ? this.objects.presignGet(key, this.config.PRESIGN_SECONDS) : shotFilePath(shotId, file);
  }

  /** The object key behind a shot's file, from its record; undefined when it has none. */
  private async fileKey(shot: ShotRecord, file: ShotFile): Promise<string | undefined> {
    switch (file.kind) {
      case 'reference':
        return shot.inputs.reference;
      case 'background':
        return shot.inputs.background;
      case 'input':
        return shot.inputs.frames[file.frame - 1];
      case 'output':
      case 'preview': {
        if (file.frame > shot.frameCount) return undefined;
        const frame = await this.store.frame(shot.id, file.frame);
        if (frame?.state !== 'completed' || !frame.output) return undefined;
        return file.kind === 'output' ? frame.output : this.keysOf(shot.project, shot.id).preview(file.frame);
      }
    }
  }

  private async liveWorkers(): Promise<number> {
    return (await this.store.workers(3 * this.config.HEARTBEAT_MS)).length;
  }

  private async enqueue(shot: ShotRecord): Promise<void> {
    await this.queues.enqueuePrepare({ shotId: shot.id, project: shot.project }, shot.priority);
  }

  /** The shot when it belongs to `owner`; another project's shot is as absent as a missing one. */
  private async mustGet(id: string, owner: string): Promise<ShotRecord> {
    const shot = await this.store.get(id);
    if (!shot || shot.project !== owner) throw notFound('shot', id);
    return shot;
  }

  /** Validates the settings against the pack; the shot's base seed (random for −1). */
  private resolveSeed(settings: Record<string, unknown>): number {
    const resolved = resolveSettings(settings, this.pack, this.random);
    checkPackServes(this.pack, resolved);
    return resolved.seed;
  }

  private checkFrameCount(n: number, field: string): void {
    if (n > this.config.MAX_FRAMES) throw badRequest(field, `${n} frames; at most ${this.config.MAX_FRAMES} per shot`);
  }

  private checkObjectSize(size: number, field: string, key: string): void {
    if (size === 0) throw new ApiError(400, 'INVALID_IMAGE', `${key} is empty`, field);
    if (size > LIMITS.fileBytes) throw tooLarge(field, `${key} is ${size} bytes, over the limit of ${LIMITS.fileBytes}`);
  }

  /** Full decode (header first): PipelineError INVALID_IMAGE / IMAGE_TOO_LARGE naming `field`. */
  private async decode(bytes: Uint8Array, field: string): Promise<void> {
    await decodeImage(bytes, field, { maxPixels: this.config.MAX_PIXELS });
  }

  private newId(): string {
    return newShotId(this.clock().getTime(), this.random);
  }

  private keysOf(project: string, id: string): ShotKeys {
    return shotKeys(this.config.S3_PREFIX, project, id);
  }

  private async discardObjects(keys: ShotKeys): Promise<void> {
    await this.objects.deletePrefix(`${keys.root}/`);
  }
}

function describeFile(file: ShotFile): string {
  return 'frame' in file ? `${file.kind} for frame ${file.frame}` : file.kind;
}

/** The file an upload field (`reference`, `background`, `frames[i]`) is PUT to. */
function uploadFile(field: string): ShotFile {
  const m = /^frames\[(\d+)\]$/.exec(field);
  if (m) return { kind: 'input', frame: Number(m[1]) + 1 };
  return { kind: field === 'background' ? 'background' : 'reference' };
}

/** The request with its project settled: omitted means the caller's; another one is refused. */
function owned<T extends { project?: string }>(request: T, owner: string): T & { project: string } {
  if (request.project !== undefined && request.project !== owner) {
    throw forbidden(`this key belongs to project ${owner}; it cannot submit into ${request.project}`, 'project');
  }
  return { ...request, project: owner };
}
