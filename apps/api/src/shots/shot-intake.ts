/**
 * Submitting a shot, in any of its three styles — multipart images, existing objects, presigned
 * uploads. Every input is checked before anything is stored; then the shot is created (announced
 * by `shot.created` in the same write) and its prepare job queued; the workers do the rest. An
 * Idempotency-Key makes a repeated submit answer with the first shot and change nothing.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { Config } from '@celfarm/config';
import { frameSeed, newShotId, type FarmQueues, type FrameRecord, type ShotRecord, type ShotStore } from '@celfarm/jobs';
import type { FarmMetrics } from '@celfarm/metrics';
import type { PackManifest } from '@celfarm/pipeline/pack/schema';
import { checkPackServes } from '@celfarm/pipeline/requirements';
import { resolveSettings } from '@celfarm/pipeline/settings';
import { projectPrefix, type ObjectStore } from '@celfarm/storage';
import { forbidden } from '../auth/principal.ts';
import { ApiError, badRequest, missingInput } from '../core/api-error.ts';
import { mapLimit } from '../core/concurrency.ts';
import { CLOCK, CONFIG, FARM_QUEUES, METRICS, OBJECT_STORE, PACK, RANDOM, SHOT_STORE } from '../core/tokens.ts';
import { checkDecodes, checkFrameCount, checkObjectSize, DECODE_CONCURRENCY, IO_CONCURRENCY } from './input-checks.ts';
import { IMAGE_KEY, checkKeyScope, sniffContentType, type ShotForm } from './inputs.ts';
import { sha256Hex } from '@celfarm/pipeline/hash';
import { ShotAccess } from './shot-access.ts';
import { ShotUploads, type PendingUpload } from './shot-uploads.ts';
import { formRequestSchema, jsonSubmitSchema, type FormRequest, type SubmitView } from './shots.dto.ts';

export interface SubmitResult {
  /** False when the Idempotency-Key matched an earlier submit (that shot is returned). */
  created: boolean;
  view: SubmitView;
}

/** A submit's request fields with the project settled: the caller's own. */
type OwnedRequest = FormRequest & { project: string };

/** A checked submit, ready to become a shot record. */
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

@Injectable()
export class ShotIntake {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SHOT_STORE) private readonly store: ShotStore,
    @Inject(FARM_QUEUES) private readonly queues: FarmQueues,
    @Inject(OBJECT_STORE) private readonly objects: ObjectStore,
    @Inject(PACK) private readonly pack: PackManifest,
    @Inject(METRICS) private readonly metrics: FarmMetrics,
    @Inject(CLOCK) private readonly clock: () => Date,
    @Inject(RANDOM) private readonly random: () => number,
    @Inject(ShotAccess) private readonly access: ShotAccess,
    @Inject(ShotUploads) private readonly uploads: ShotUploads,
  ) {}

  /**
   * Multipart submit: images arrive in the request, are decoded, then stored at the shot's keys.
   * `owner` is the caller's project: the request may name only that one.
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
    checkFrameCount(form.frames.length, 'frames', this.config.MAX_FRAMES);

    const images: [string, Uint8Array][] = [
      ['reference', form.reference],
      ...(form.background ? [['background', form.background] as [string, Uint8Array]] : []),
      ...form.frames.map((b, i): [string, Uint8Array] => [`frames[${i}]`, b]),
    ];
    await mapLimit(images, DECODE_CONCURRENCY, ([field, bytes]) => checkDecodes(bytes, field, this.config.MAX_PIXELS));

    const id = this.newId();
    const keys = this.access.keys(request.project, id);
    const objects: [string, Uint8Array][] = [
      [keys.reference, form.reference],
      ...(form.background ? [[keys.background, form.background] as [string, Uint8Array]] : []),
      ...form.frames.map((b, i): [string, Uint8Array] => [keys.frameInput(i + 1), b]),
    ];
    try {
      await mapLimit(objects, IO_CONCURRENCY, ([key, bytes]) => this.objects.put(key, bytes, sniffContentType(bytes)));
    } catch (e) {
      await this.access.discardObjects(request.project, id);
      throw e;
    }
    const inputs = {
      reference: keys.reference,
      ...(form.background ? { background: keys.background } : {}),
      frames: form.frames.map((_, i) => keys.frameInput(i + 1)),
    };
    const hashes = {
      referenceSha256: sha256Hex(form.reference),
      ...(form.background ? { backgroundSha256: sha256Hex(form.background) } : {}),
      sketchSha256: form.frames.map((f) => sha256Hex(f)),
    };
    return this.create({ id, request, seed, inputs, awaitingUploads: false, ...hashes }, [], idempotencyKey);
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
    const keys = this.access.keys(request.project, id);
    const scope = projectPrefix(this.config.S3_PREFIX, request.project);
    const uploads: PendingUpload[] = [];
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
      checkFrameCount(f.keys.length, 'frames.keys', this.config.MAX_FRAMES);
      f.keys.forEach((key, i) => checkKeyScope(key, scope, `frames.keys[${i}]`));
      f.keys.forEach((key, i) => existing.push({ field: `frames.keys[${i}]`, key }));
      frames = f.keys;
    } else if (f.prefix !== undefined) {
      checkKeyScope(f.prefix, scope, 'frames.prefix');
      const listed = (await this.objects.list(f.prefix)).filter((o) => IMAGE_KEY.test(o.key));
      if (listed.length === 0) throw missingInput('frames.prefix', `no images (.png, .jpg, .jpeg, .webp) under ${f.prefix}`);
      checkFrameCount(listed.length, 'frames.prefix', this.config.MAX_FRAMES);
      for (const o of listed) checkObjectSize(o.size, 'frames.prefix', o.key);
      frames = listed.map((o) => o.key);
    } else {
      const n = f.upload!;
      checkFrameCount(n, 'frames.upload', this.config.MAX_FRAMES);
      frames = Array.from({ length: n }, (_, i) => keys.frameInput(i + 1));
      frames.forEach((key, i) => uploads.push({ field: `frames[${i}]`, key }));
    }

    await mapLimit(existing, IO_CONCURRENCY, async ({ field, key }) => {
      const head = await this.objects.head(key);
      if (!head) throw missingInput(field, `no object at ${key}`);
      checkObjectSize(head.size, field, key);
    });

    const inputs = { reference, ...(background ? { background } : {}), frames };
    return this.create({ id, request, seed, inputs, awaitingUploads: uploads.length > 0 }, uploads, idempotencyKey);
  }

  /**
   * Creates the checked shot (which announces it) and queues its prepare job unless it awaits
   * uploads. A shot whose job cannot be queued is removed again, objects and all.
   */
  private async create(shot: NewShot, uploads: PendingUpload[], idempotencyKey?: string): Promise<SubmitResult> {
    const { record, created } = await this.createRecord(shot, idempotencyKey);
    if (!created) {
      // Lost a race with a concurrent submit carrying the same key: answer with the first shot.
      await this.access.discardObjects(shot.request.project, shot.id);
      return { created: false, view: await this.uploads.submitView(record) };
    }
    if (!record.awaitingUploads) {
      try {
        await this.queues.enqueuePrepare({ shotId: record.id, project: record.project }, record.priority);
      } catch (e) {
        await this.store.delete(record.id);
        await this.access.discardObjects(record.project, record.id);
        throw e;
      }
    }
    this.metrics.shotsSubmitted.inc();
    return { created: true, view: await this.uploads.submitView(record, uploads) };
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
    return shot ? { created: false, view: await this.uploads.submitView(shot) } : null;
  }

  /** Validates the settings against the pack; the shot's base seed (random for −1). */
  private resolveSeed(settings: Record<string, unknown>): number {
    const resolved = resolveSettings(settings, this.pack, this.random);
    checkPackServes(this.pack, resolved);
    return resolved.seed;
  }

  private newId(): string {
    return newShotId(this.clock().getTime(), this.random);
  }
}

/** The request with its project settled: omitted means the caller's; another one is refused. */
function owned<T extends { project?: string }>(request: T, owner: string): T & { project: string } {
  if (request.project !== undefined && request.project !== owner) {
    throw forbidden(`this key belongs to project ${owner}; it cannot submit into ${request.project}`, 'project');
  }
  return { ...request, project: owner };
}
