/**
 * A shot's reference context as the handlers need it. Prepare finds or builds it from the shot's
 * reference (+ background) and its settings as resolved at submit (taken as given: nothing here
 * resolves or checks them again), records the input hashes and stores the reference mask; a frame
 * finds it by the key prepare put on the shot, and rebuilds it from the inputs when the store has
 * lost it. A build's inference time counts as the project's busy seconds.
 */
import type { ShotRecord } from '@celfarm/jobs';
import type { FarmMetrics } from '@celfarm/metrics';
import { referenceContextKey, type PackManifest, type PipelineHost } from '@celfarm/pipeline';
import { shotKeys, type ObjectStore } from '@celfarm/storage';
import { encodeMaskPng, readInputImage, type InputImage } from './images.ts';
import { referenceMaskOf, ReferenceContexts, type ContextInputs, type ObtainedContext } from './reference-contexts.ts';

export interface ShotContextsOptions {
  objects: ObjectStore;
  host: Pick<PipelineHost, 'prepare'>;
  /** The manifest of the pack the host serves (context keys are computed from it). */
  manifest: PackManifest;
  metrics: FarmMetrics;
  /** Object key prefix (S3_PREFIX). */
  objectPrefix: string;
  /** Largest accepted input image, width × height (MAX_PIXELS). */
  maxPixels: number;
  /** Reference contexts kept in memory (default 4). */
  capacity?: number;
}

interface ReferenceImages {
  reference: InputImage;
  background?: InputImage;
}

export class ShotContexts {
  readonly cache: ReferenceContexts;

  constructor(private readonly opts: ShotContextsOptions) {
    this.cache = new ReferenceContexts({
      objects: opts.objects,
      host: opts.host,
      prefix: opts.objectPrefix,
      metrics: opts.metrics,
      capacity: opts.capacity,
    });
  }

  /**
   * For prepare: the context of the shot's reference side (memory → store → build), with the
   * sha256 of the reference and background written into `lineage` as they are read — also when
   * an image then fails to decode — and the reference mask stored beside the inputs.
   */
  async prepare(shot: ShotRecord, lineage: Partial<ShotRecord>): Promise<ObtainedContext> {
    const images = await this.referenceImages(shot, lineage);
    const ctx = await this.cache.obtain(this.keyOf(shot, images), async () => this.inputs(shot, images));
    this.countBuild(shot, ctx);
    const mask = ctx.built ? ctx.built.referenceMask : referenceMaskOf(ctx.bytes);
    if (mask) await this.opts.objects.put(shotKeys(this.opts.objectPrefix, shot.project, shot.id).referenceMask, await encodeMaskPng(mask), 'image/png');
    return ctx;
  }

  /** For a frame: by the shot's key from memory or the store, rebuilt from its inputs when gone. */
  async forFrame(shot: ShotRecord): Promise<ObtainedContext> {
    let ctx: ObtainedContext;
    if (shot.contextKey) {
      ctx = await this.cache.obtain(shot.contextKey, async () => this.inputs(shot, await this.referenceImages(shot)));
    } else {
      const images = await this.referenceImages(shot);
      ctx = await this.cache.obtain(this.keyOf(shot, images), async () => this.inputs(shot, images));
    }
    this.countBuild(shot, ctx);
    return ctx;
  }

  private async referenceImages(shot: ShotRecord, lineage: Partial<ShotRecord> = {}): Promise<ReferenceImages> {
    const { objects, maxPixels } = this.opts;
    const reference = await readInputImage(objects, shot.inputs.reference, 'reference', maxPixels, (sha) => (lineage.referenceSha256 = sha));
    const bgKey = shot.inputs.background;
    const background = bgKey ? await readInputImage(objects, bgKey, 'background', maxPixels, (sha) => (lineage.backgroundSha256 = sha)) : undefined;
    return { reference, background };
  }

  /** Computed here, before any build, so a context in the store is found without the host. */
  private keyOf(shot: ShotRecord, images: ReferenceImages): string {
    return referenceContextKey(this.opts.manifest, shot.settings, { reference: images.reference.image, background: images.background?.image });
  }

  private inputs(shot: ShotRecord, images: ReferenceImages): ContextInputs {
    return { reference: images.reference.image, background: images.background?.image, settings: shot.settings };
  }

  private countBuild(shot: ShotRecord, ctx: ObtainedContext): void {
    if (ctx.built) this.opts.metrics.busySeconds.inc({ project: shot.project }, ctx.built.seconds);
  }
}
