/**
 * What a client reads of its shots: one shot (counts, progress, ETA), pages of its frames with
 * the URLs of their images, pages of summaries, and the image files themselves when the API
 * serves them (S3_PRESIGN off).
 */
import type { Readable } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import type { Config } from '@celfarm/config';
import { lastSegment, type FrameRecord, type ShotRecord, type ShotStore } from '@celfarm/jobs';
import type { ObjectStore } from '@celfarm/storage';
import { forbidden } from '../auth/principal.ts';
import { ApiError } from '../core/api-error.ts';
import { mapLimit } from '../core/concurrency.ts';
import { presignsObjectUrls } from '../core/object-urls.ts';
import { CONFIG, OBJECT_STORE, SHOT_STORE } from '../core/tokens.ts';
import { IO_CONCURRENCY } from './input-checks.ts';
import { sniffContentType } from './inputs.ts';
import { ShotAccess } from './shot-access.ts';
import { peek, shotFilePath, type ShotFile } from './shot-files.ts';
import { frameView, pageOfFrames, shotSummary, shotView, type FrameUrls } from './shot-view.ts';
import type { FramePage, FrameQuery, FrameView, ListQuery, ShotList, ShotView } from './shots.dto.ts';

@Injectable()
export class ShotViews {
  /** Presigned store URLs in views; else paths on this API (S3_PRESIGN). */
  private readonly presign: boolean;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(SHOT_STORE) private readonly store: ShotStore,
    @Inject(OBJECT_STORE) private readonly objects: ObjectStore,
    @Inject(ShotAccess) private readonly access: ShotAccess,
  ) {
    this.presign = presignsObjectUrls(config);
  }

  async view(id: string, owner: string): Promise<ShotView> {
    return this.of(await this.access.owned(id, owner));
  }

  /** The caller's shots only; naming another project is refused. */
  async list(query: ListQuery, owner: string): Promise<ShotList> {
    if (query.project !== undefined && query.project !== owner) throw forbidden(`this key belongs to project ${owner}`, 'project');
    const { shots, next } = await this.store.list({
      limit: query.limit,
      project: owner,
      ...(query.state ? { state: query.state } : {}),
      ...(query.before ? { before: query.before } : {}),
      ...(query.q ? { q: query.q } : {}),
    });
    const workers = await this.access.liveWorkers();
    const summaries = await mapLimit(shots, IO_CONCURRENCY, async (s) => shotSummary(s, await this.store.digest(s.id, s.frameCount), workers));
    return { shots: summaries, next };
  }

  /** The view of a shot: counts, progress, ETA and its active frames, no per-frame list. */
  async of(shot: ShotRecord): Promise<ShotView> {
    const [digest, workers] = await Promise.all([this.store.digest(shot.id, shot.frameCount), this.access.liveWorkers()]);
    return shotView(shot, digest, workers);
  }

  /** A page of the shot's frames with links to their sketch, output and preview. */
  async frames(id: string, owner: string, query: FrameQuery): Promise<FramePage> {
    const shot = await this.access.owned(id, owner);
    const states = await this.store.frameStates(shot.id, shot.frameCount);
    const page = await pageOfFrames(states, (numbers) => this.store.someFrames(shot.id, numbers), query);
    const frames = await mapLimit(page.frames, IO_CONCURRENCY, async (f) => frameView(shot, f, await this.frameUrls(shot, f)));
    return { frames, next: page.next };
  }

  /** One frame of the shot, as its pages list it. 404 naming `frame` when the shot has no such frame. */
  async frame(id: string, owner: string, frame: number): Promise<FrameView> {
    const shot = await this.access.owned(id, owner);
    const f = frame <= shot.frameCount ? await this.store.frame(shot.id, frame) : null;
    if (!f) throw new ApiError(404, 'NOT_FOUND', `shot ${id} has no frame ${frame} (it has ${shot.frameCount})`, 'frame');
    return frameView(shot, f, await this.frameUrls(shot, f));
  }

  /** Only the URLs of objects that exist: no sketch while it awaits its upload, no colour before completion. */
  private async frameUrls(shot: ShotRecord, f: FrameRecord): Promise<FrameUrls> {
    const input = shot.inputs.frames[f.frame - 1];
    const done = f.state === 'completed' && f.output !== undefined;
    const [inputUrl, output, preview] = await Promise.all([
      input !== undefined && !shot.awaitingUploads ? this.linkTo(shot.id, { kind: 'input', frame: f.frame }, input) : undefined,
      done ? this.linkTo(shot.id, { kind: 'output', frame: f.frame }, f.output!, f.take) : undefined,
      // The worker writes a WebP preview next to each output (outputs/previews/<name>.webp, named as the output).
      done ? this.linkTo(shot.id, { kind: 'preview', frame: f.frame }, this.access.keys(shot.project, shot.id).preview(f.frame, f.fileName), f.take) : undefined,
    ]);
    const takes = new Map<number, { output?: string; preview?: string }>();
    for (const t of f.takes ?? []) {
      const [o, p] = await Promise.all([
        this.linkTo(shot.id, { kind: 'take-output', frame: f.frame, round: t.round }, t.output),
        t.preview ? this.linkTo(shot.id, { kind: 'take-preview', frame: f.frame, round: t.round }, t.preview) : undefined,
      ]);
      takes.set(t.round, { output: o, ...(p ? { preview: p } : {}) });
    }
    return { ...(inputUrl ? { input: inputUrl } : {}), ...(output ? { output } : {}), ...(preview ? { preview } : {}), ...(takes.size ? { takes } : {}) };
  }

  /**
   * One of the shot's images, to stream to its owner: the object its record names (outputs and
   * previews of completed frames only), with the content type its bytes show. 404 when absent.
   */
  async openFile(id: string, owner: string, file: ShotFile): Promise<{ body: Readable; contentType: string; name: string }> {
    const shot = await this.access.owned(id, owner);
    const key = await this.fileKey(shot, file);
    const body = key === undefined ? null : await this.objects.getStream(key);
    if (!body || key === undefined) throw new ApiError(404, 'NOT_FOUND', `shot ${id} has no ${describeFile(file)}`);
    try {
      const contentType = sniffContentType(await peek(body));
      return { body, contentType, name: lastSegment(key) };
    } catch (e) {
      body.destroy();
      throw e;
    }
  }

  /** The object key behind a shot's file, from its record; undefined when it has none. */
  async fileKey(shot: ShotRecord, file: ShotFile): Promise<string | undefined> {
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
        return file.kind === 'output' ? frame.output : this.access.keys(shot.project, shot.id).preview(file.frame, frame.fileName);
      }
      case 'take-output':
      case 'take-preview': {
        if (file.frame > shot.frameCount) return undefined;
        const take = (await this.store.frame(shot.id, file.frame))?.takes?.find((t) => t.round === file.round);
        return file.kind === 'take-output' ? take?.output : take?.preview;
      }
    }
  }

  /** Where a client fetches one of the shot's images: a presigned GET, or its path on this API. */
  private linkTo(shotId: string, file: ShotFile, key: string, take?: number): Promise<string> | string {
    if (this.presign) return this.objects.presignGet(key, this.config.PRESIGN_SECONDS);
    // A re-rendered frame's output keeps its key: its URL names the take, for caches.
    return `${shotFilePath(shotId, file)}${take ? `?take=${take}` : ''}`;
  }
}

export function describeFile(file: ShotFile): string {
  if ('round' in file) return `${file.kind.slice('take-'.length)} of frame ${file.frame}'s take of round ${file.round}`;
  return 'frame' in file ? `${file.kind} for frame ${file.frame}` : file.kind;
}
