/**
 * The upload style of submit, after the shot exists: where each input still expected is PUT (a
 * presigned store URL, or this API with the caller's key), taking such a PUT, and `start`, which
 * checks every uploaded object (present, within limits, decodable), gives the shot the output size
 * of its first frame when its request asked none (the rest of its settings were resolved at
 * submit), and then queues the shot.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { Config } from '@celfarm/config';
import type { FarmQueues, ShotRecord, ShotStore } from '@celfarm/jobs';
import type { PackManifest } from '@celfarm/pipeline/pack/schema';
import { withFrameSize, type FrameSize } from '@celfarm/pipeline/settings';
import type { ObjectStore } from '@celfarm/storage';
import { ApiError, missingInput, notFound } from '../core/api-error.ts';
import { mapLimit } from '../core/concurrency.ts';
import { presignsObjectUrls } from '../core/object-urls.ts';
import { CONFIG, FARM_QUEUES, OBJECT_STORE, PACK, SHOT_STORE } from '../core/tokens.ts';
import { checkDecodes, checkObjectSize, DECODE_CONCURRENCY, IO_CONCURRENCY } from './input-checks.ts';
import { sniffContentType } from './inputs.ts';
import { sha256Hex } from '@celfarm/pipeline/hash';
import { ShotAccess } from './shot-access.ts';
import { inputField, shotFilePath, type ShotFile } from './shot-files.ts';
import { describeFile, ShotViews } from './shot-views.ts';
import type { ShotView, SubmitView, Upload } from './shots.dto.ts';

/** An input still to be uploaded: its submit field (`reference`, `background`, `frames[i]`) and key. */
export interface PendingUpload {
  field: string;
  key: string;
  /** A frame's file name. */
  fileName?: string;
}

const UPLOAD_CONTENT_TYPE = 'image/png';

@Injectable()
export class ShotUploads {
  /** Presigned store URLs for uploads; else paths on this API (S3_PRESIGN). */
  private readonly presign: boolean;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SHOT_STORE) private readonly store: ShotStore,
    @Inject(FARM_QUEUES) private readonly queues: FarmQueues,
    @Inject(OBJECT_STORE) private readonly objects: ObjectStore,
    @Inject(PACK) private readonly pack: PackManifest,
    @Inject(ShotAccess) private readonly access: ShotAccess,
    @Inject(ShotViews) private readonly views: ShotViews,
  ) {
    this.presign = presignsObjectUrls(config);
  }

  /** The submit answer: the shot view plus a PUT per input still to upload (again on a replay). */
  async submitView(shot: ShotRecord, pending?: PendingUpload[]): Promise<SubmitView> {
    const view = await this.views.of(shot);
    if (!shot.awaitingUploads) return view;
    const own = this.access.keys(shot.project, shot.id).inputsPrefix;
    const fileNames = pending ? [] : (await this.store.frames(shot.id)).map((f) => f.fileName);
    const uploads: PendingUpload[] = pending ?? [
      ...(shot.inputs.reference.startsWith(own) ? [{ field: 'reference', key: shot.inputs.reference }] : []),
      ...(shot.inputs.background?.startsWith(own) ? [{ field: 'background', key: shot.inputs.background }] : []),
      ...shot.inputs.frames.flatMap((key, i) => (key.startsWith(own) ? [{ field: `frames[${i}]`, key, fileName: fileNames[i] }] : [])),
    ];
    const signed = await mapLimit(uploads, IO_CONCURRENCY, async ({ field, key, fileName }): Promise<Upload> => ({
      field,
      ...(fileName ? { fileName } : {}),
      key,
      method: 'PUT',
      // Through the API (with the caller's key) unless the store's own signatures guard it.
      url: this.presign ? await this.objects.presignPut(key, this.config.PRESIGN_SECONDS, UPLOAD_CONTENT_TYPE) : shotFilePath(shot.id, uploadFile(field)),
      headers: { 'Content-Type': UPLOAD_CONTENT_TYPE },
    }));
    return { ...view, uploads: signed };
  }

  /**
   * An input uploaded through the API: only while the shot awaits its uploads, only to the
   * shot's own input keys. `start` checks it.
   */
  async upload(id: string, owner: string, file: ShotFile, bytes: Uint8Array): Promise<void> {
    const shot = await this.access.owned(id, owner);
    const field = inputField(file);
    if (!shot.awaitingUploads || shot.state !== 'queued') {
      throw new ApiError(409, 'STATE_CONFLICT', `shot ${id} is ${shot.awaitingUploads ? shot.state : 'not awaiting uploads'}; its inputs can no longer change`, field);
    }
    const key = await this.views.fileKey(shot, file);
    if (key === undefined) throw new ApiError(404, 'NOT_FOUND', `shot ${id} has no ${describeFile(file)}`);
    if (!key.startsWith(this.access.keys(shot.project, shot.id).inputsPrefix)) {
      throw new ApiError(409, 'STATE_CONFLICT', `the ${field} of shot ${id} is the existing object ${key}; there is nothing to upload`, field);
    }
    checkObjectSize(bytes.length, field, key);
    await this.objects.put(key, bytes, sniffContentType(bytes));
  }

  /** Checks the uploaded objects (present, decodable), records their hashes, then queues the shot. */
  async start(id: string, owner: string): Promise<ShotView> {
    const shot = await this.access.owned(id, owner);
    if (!shot.awaitingUploads) return this.views.of(shot);
    if (shot.state !== 'queued') throw new ApiError(409, 'STATE_CONFLICT', `shot ${id} is ${shot.state}; it can no longer start`);
    const own = (key: string) => key.startsWith(this.access.keys(shot.project, shot.id).inputsPrefix);
    const checks: { field: string; key: string; frame?: number; fileName?: string }[] = [];
    if (own(shot.inputs.reference)) checks.push({ field: 'reference', key: shot.inputs.reference });
    if (shot.inputs.background && own(shot.inputs.background)) checks.push({ field: 'background', key: shot.inputs.background });
    const fileNames = (await this.store.frames(id)).map((f) => f.fileName);
    shot.inputs.frames.forEach((key, i) => own(key) && checks.push({ field: `frames[${i}]`, key, frame: i + 1, fileName: fileNames[i] }));

    const first: { size?: FrameSize } = {};
    const hashes = await mapLimit(checks, DECODE_CONCURRENCY, async ({ field, key, fileName, frame }) => {
      const bytes = await this.objects.get(key);
      if (!bytes) throw missingInput(field, `${fileName ?? field} is not uploaded yet (PUT it to its upload URL; key ${key})`);
      checkObjectSize(bytes.length, field, key);
      const size = await checkDecodes(bytes, field, this.config.MAX_PIXELS, fileName);
      if (frame === 1) first.size = size;
      return sha256Hex(bytes);
    });
    // No width/height asked: the output takes the first frame's size, known only now.
    const resolution = first.size ? withFrameSize({ settings: shot.settings, warnings: shot.warnings }, first.size, this.pack) : undefined;
    const hashOf = (field: string) => hashes[checks.findIndex((c) => c.field === field)];
    const frameHashes = checks.flatMap((c, i) => (c.frame !== undefined ? [{ frame: c.frame, sketchSha256: hashes[i]! }] : []));
    const updated = await this.store.update(
      id,
      {
        state: 'queued',
        awaitingUploads: false,
        ...(resolution ? { settings: resolution.settings, warnings: resolution.warnings } : {}),
        ...(hashOf('reference') ? { referenceSha256: hashOf('reference') } : {}),
        ...(hashOf('background') ? { backgroundSha256: hashOf('background') } : {}),
      },
      { from: ['queued'] },
    );
    if (!updated) throw notFound('shot', id);
    await mapLimit(frameHashes, IO_CONCURRENCY, (h) => this.store.setFrame(id, h.frame, { sketchSha256: h.sketchSha256 }));
    await this.queues.enqueuePrepare({ shotId: updated.id, project: updated.project }, updated.priority);
    return this.views.of(updated);
  }
}

/** The file an upload field (`reference`, `background`, `frames[i]`) is PUT to. */
function uploadFile(field: string): ShotFile {
  const m = /^frames\[(\d+)\]$/.exec(field);
  if (m) return { kind: 'input', frame: Number(m[1]) + 1 };
  return { kind: field === 'background' ? 'background' : 'reference' };
}
