/**
 * /v1/shots as its controllers call it, one line per operation over the services that do the
 * work: {@link ShotIntake} (the three submit styles), {@link ShotUploads} (uploads and start),
 * {@link ShotViews} (views, frame pages, lists, image files) and {@link ShotLifecycle} (cancel, retry,
 * delete). `owner` is always the caller's project: another project's shot is as absent as a
 * missing one.
 */
import type { Readable } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import type { ShotForm } from './inputs.ts';
import type { ShotFile } from './shot-files.ts';
import { ShotIntake, type SubmitResult } from './shot-intake.ts';
import { ShotLifecycle } from './shot-lifecycle.ts';
import { ShotUploads } from './shot-uploads.ts';
import { ShotViews } from './shot-views.ts';
import type { FramePage, FrameQuery, FrameView, ListQuery, ShotList, ShotView } from './shots.dto.ts';

export type { SubmitResult } from './shot-intake.ts';

@Injectable()
export class ShotsService {
  constructor(
    @Inject(ShotIntake) private readonly intake: ShotIntake,
    @Inject(ShotUploads) private readonly uploads: ShotUploads,
    @Inject(ShotViews) private readonly views: ShotViews,
    @Inject(ShotLifecycle) private readonly lifecycle: ShotLifecycle,
  ) {}

  submitForm(form: ShotForm, owner: string, idempotencyKey?: string): Promise<SubmitResult> {
    return this.intake.submitForm(form, owner, idempotencyKey);
  }

  submitJson(body: unknown, owner: string, idempotencyKey?: string): Promise<SubmitResult> {
    return this.intake.submitJson(body, owner, idempotencyKey);
  }

  upload(id: string, owner: string, file: ShotFile, bytes: Uint8Array): Promise<void> {
    return this.uploads.upload(id, owner, file, bytes);
  }

  start(id: string, owner: string): Promise<ShotView> {
    return this.uploads.start(id, owner);
  }

  view(id: string, owner: string): Promise<ShotView> {
    return this.views.view(id, owner);
  }

  list(query: ListQuery, owner: string): Promise<ShotList> {
    return this.views.list(query, owner);
  }

  frames(id: string, owner: string, query: FrameQuery): Promise<FramePage> {
    return this.views.frames(id, owner, query);
  }

  openFile(id: string, owner: string, file: ShotFile): Promise<{ body: Readable; contentType: string; name: string }> {
    return this.views.openFile(id, owner, file);
  }

  cancel(id: string, owner: string): Promise<ShotView> {
    return this.lifecycle.cancel(id, owner);
  }

  retry(id: string, owner: string): Promise<ShotView> {
    return this.lifecycle.retry(id, owner);
  }

  frame(id: string, owner: string, frame: number): Promise<FrameView> {
    return this.views.frame(id, owner, frame);
  }

  approve(id: string, owner: string, frame: number, by: string): Promise<FrameView> {
    return this.lifecycle.approve(id, owner, frame, by);
  }

  rerender(id: string, owner: string, frames: readonly number[], seed: number | undefined): Promise<ShotView> {
    return this.lifecycle.rerender(id, owner, frames, seed);
  }

  remove(id: string, owner: string): Promise<void> {
    return this.lifecycle.remove(id, owner);
  }
}
