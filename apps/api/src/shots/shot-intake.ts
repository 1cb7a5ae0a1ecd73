/**
 * Submitting a shot, in any of its three styles — multipart images, existing objects, presigned
 * uploads. Every input is checked before anything is stored; then the shot is created (announced
 * by `shot.created` in the same write) and its prepare job queued; the workers do the rest. An
 * Idempotency-Key makes a repeated submit answer with the first shot and change nothing.
 *
 * The settings are resolved here, once, against the pack this API serves (resolveSettings: every
 * rule, 400 naming the field) and stored resolved on the shot with their warnings, which the
 * submit answers with. Without width/height the output takes the first frame's size, fitted to the
 * pack: read from the upload (multipart), from the object (keys, prefix), or at start (uploads).
 */
import { Inject, Injectable } from '@nestjs/common';
import type { Config } from '@celfarm/config';
import { anyConsistency, DEFAULT_CHAIN_LINK, defaultShotName, frameSeed, lastSegment, newShotId, NO_CONSISTENCY, resolveQaThresholds, type FarmQueues, type QaThresholdStore, type FrameRecord, type ShotRecord, type ShotStore } from '@celfarm/jobs';
import type { FarmMetrics } from '@celfarm/metrics';
import type { PackManifest } from '@celfarm/pipeline/pack/schema';
import { resolveSettings, withFrameSize, type FrameSize, type Resolution } from '@celfarm/pipeline/settings';
import { projectPrefix, type ObjectStore } from '@celfarm/storage';
import { forbidden } from '../auth/principal.ts';
import { ApiError, badRequest, missingInput } from '../core/api-error.ts';
import { mapLimit } from '../core/concurrency.ts';
import { CLOCK, CONFIG, FARM_QUEUES, METRICS, OBJECT_STORE, PACK, QA_THRESHOLD_STORE, RANDOM, SHOT_STORE } from '../core/tokens.ts';
import { checkDecodes, checkFileNames, checkFrameCount, checkObjectSize, DECODE_CONCURRENCY, IO_CONCURRENCY } from './input-checks.ts';
import { IMAGE_KEY, checkKeyScope, sniffContentType, type ShotForm } from './inputs.ts';
import { sha256Hex } from '@celfarm/pipeline/hash';
import { DEFAULT_THRESHOLDS } from '@celfarm/qa';
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
  /** The request's settings resolved against the pack, with their warnings. */
  resolution: Resolution;
  inputs: ShotRecord['inputs'];
  /** The frames' file names, checked (checkFileNames), in frame order. */
  fileNames: string[];
  /** The folder the frames came from, when they came from one (for the default name). */
  folder?: string;
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
    @Inject(QA_THRESHOLD_STORE) private readonly qaThresholds: QaThresholdStore,
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
    const resolved = this.resolve(request.settings, form.background !== undefined);
    if (!form.reference) throw missingInput('reference');
    if (form.frames.length === 0) throw missingInput('frames', 'required: at least one frames file');
    checkFrameCount(form.frames.length, 'frames', this.config.MAX_FRAMES);
    const fileNames = checkFileNames(form.frameNames, (i) => `frames[${i}]`);

    const images: [string, Uint8Array, string?][] = [
      ['reference', form.reference],
      ...(form.background ? [['background', form.background] as [string, Uint8Array]] : []),
      ...form.frames.map((b, i): [string, Uint8Array, string] => [`frames[${i}]`, b, fileNames[i]!]),
    ];
    const sizes = await mapLimit(images, DECODE_CONCURRENCY, ([field, bytes, fileName]) => checkDecodes(bytes, field, this.config.MAX_PIXELS, fileName));
    const resolution = withFrameSize(resolved, sizes[images.length - form.frames.length]!, this.pack);

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
    return this.create({ id, request, resolution, inputs, fileNames, awaitingUploads: false, ...hashes }, [], idempotencyKey);
  }

  /** JSON submit: inputs are existing objects under the project's prefix, or presigned uploads. */
  async submitJson(body: unknown, owner: string, idempotencyKey?: string): Promise<SubmitResult> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw badRequest('body', 'expected a JSON object (application/json) or multipart/form-data');
    }
    const request = owned(jsonSubmitSchema.parse(body), owner);
    const replay = await this.replay(request.project, idempotencyKey);
    if (replay) return replay;
    const resolved = this.resolve(request.settings, request.background !== undefined);

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
    let fileNames: string[];
    let folder: string | undefined;
    const f = request.frames;
    // Frames are named by `fileNames` when given, else by their keys' last segments.
    const namedBy = (i: number, keyField: string) => (f.fileNames ? `frames.fileNames[${i}]` : keyField);
    if (f.keys) {
      checkFrameCount(f.keys.length, 'frames.keys', this.config.MAX_FRAMES);
      f.keys.forEach((key, i) => checkKeyScope(key, scope, `frames.keys[${i}]`));
      fileNames = checkFileNames(f.fileNames ?? f.keys.map(lastSegment), (i) => namedBy(i, `frames.keys[${i}]`));
      f.keys.forEach((key, i) => existing.push({ field: `frames.keys[${i}]`, key }));
      frames = f.keys;
      const parent = f.keys[0]!.slice(0, f.keys[0]!.lastIndexOf('/'));
      folder = parent.length > scope.length ? parent : undefined;
    } else if (f.prefix !== undefined) {
      checkKeyScope(f.prefix, scope, 'frames.prefix');
      const listed = (await this.objects.list(f.prefix)).filter((o) => IMAGE_KEY.test(o.key));
      if (listed.length === 0) throw missingInput('frames.prefix', `no images (.png, .jpg, .jpeg, .webp) under ${f.prefix}`);
      checkFrameCount(listed.length, 'frames.prefix', this.config.MAX_FRAMES);
      for (const o of listed) checkObjectSize(o.size, 'frames.prefix', o.key);
      frames = listed.map((o) => o.key);
      fileNames = checkFileNames(frames.map(lastSegment), () => 'frames.prefix', (i) => frames[i]!);
      folder = f.prefix.length > scope.length ? f.prefix : undefined;
    } else {
      const n = f.upload!;
      checkFrameCount(n, 'frames.upload', this.config.MAX_FRAMES);
      fileNames = checkFileNames(f.fileNames ?? Array<string>(n).fill(''), (i) => namedBy(i, 'frames.upload'));
      frames = Array.from({ length: n }, (_, i) => keys.frameInput(i + 1));
      frames.forEach((key, i) => uploads.push({ field: `frames[${i}]`, key, fileName: fileNames[i]! }));
    }

    await mapLimit(existing, IO_CONCURRENCY, async ({ field, key }) => {
      const head = await this.objects.head(key);
      if (!head) throw missingInput(field, `no object at ${key}`);
      checkObjectSize(head.size, field, key);
    });

    // Frames to be uploaded give the output size at start (ShotUploads); existing ones give it now.
    const first = f.upload === undefined ? { field: f.keys ? 'frames.keys[0]' : 'frames.prefix', key: frames[0]!, fileName: fileNames[0] } : undefined;
    const resolution = first && resolved.settings.sizeFrom === 'pack' ? withFrameSize(resolved, await this.frameSize(first), this.pack) : resolved;
    const inputs = { reference, ...(background ? { background } : {}), frames };
    return this.create({ id, request, resolution, inputs, fileNames, folder, awaitingUploads: uploads.length > 0 }, uploads, idempotencyKey);
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
    const externalIds = s.request.externalIds && Object.keys(s.request.externalIds).length ? s.request.externalIds : undefined;
    // Judged by what applies now (request, project, farm, defaults), whatever changes later.
    const qaThresholds = resolveQaThresholds(DEFAULT_THRESHOLDS, this.config.QA_THRESHOLDS, await this.qaThresholds.get(s.request.project), s.request.qa?.thresholds);
    const asked = { ...NO_CONSISTENCY, ...s.request.consistency };
    const consistency = asked.referenceChain === 'previous' ? { ...asked, chainLink: asked.chainLink ?? DEFAULT_CHAIN_LINK } : asked;
    const record: ShotRecord = {
      id: s.id,
      project: s.request.project,
      name: s.request.name ?? defaultShotName({ id: s.id, fileNames: s.fileNames, folder: s.folder, externalIds }),
      ...(externalIds ? { externalIds } : {}),
      state: 'queued',
      createdAt: now,
      updatedAt: now,
      settings: s.resolution.settings,
      warnings: s.resolution.warnings,
      seed: s.resolution.settings.seed,
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
      qaThresholds,
      ...(anyConsistency(consistency) ? { consistency } : {}),
    };
    const frames: FrameRecord[] = s.inputs.frames.map((_, i) => ({
      frame: i + 1,
      state: 'waiting',
      attempts: 0,
      // Shared noise: every frame from the shot's own seed.
      seed: consistency.sharedNoise ? s.resolution.settings.seed : frameSeed(s.resolution.settings.seed, i + 1),
      fileName: s.fileNames[i],
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

  /**
   * The request's settings resolved against the pack this API serves — every rule checked, a
   * PipelineError (400) naming the field otherwise — before any input is read or stored. The
   * output size is the pack's default until the first frame's size is known (withFrameSize).
   */
  private resolve(settings: Record<string, unknown>, background: boolean): Resolution {
    return resolveSettings(settings, this.pack, { background, random: this.random });
  }

  /** The size of an existing first frame (read and decoded: its errors name `field` and its file). */
  private async frameSize(first: { field: string; key: string; fileName?: string }): Promise<FrameSize> {
    const bytes = await this.objects.get(first.key);
    if (!bytes) throw missingInput(first.field, `no object at ${first.key}`);
    return checkDecodes(bytes, first.field, this.config.MAX_PIXELS, first.fileName);
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
