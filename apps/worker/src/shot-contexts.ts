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
import { Lru } from './lru.ts';
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
  /** Context keys of chain links (approved outputs), by shot, frame and take. */
  private readonly chainKeys = new Lru<string, string>(64);

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

  /**
   * Reference chaining (Consistency `referenceChain: approved`): the context of the nearest
   * approved frame before `frame` — its output as the reference, the shot's background and
   * settings — or null when none is approved. Keyed by content like any context, so each chain
   * link is encoded once (by the first worker to need it) and found in memory or the store after.
   */
  async forChainLink(shot: ShotRecord, link: { frame: number; take?: number; output: string }): Promise<ObtainedContext> {
    const memo = `${shot.id}/${link.frame}/${link.take ?? 0}`;
    let key = this.chainKeys.get(memo);
    let images: ReferenceImages | undefined;
    const load = async () => (images ??= await this.chainImages(shot, link.output, link.frame));
    if (!key) {
      key = this.keyOf(shot, await load());
      this.chainKeys.set(memo, key);
    }
    const ctx = await this.cache.obtain(key, async () => this.inputs(shot, await load()));
    this.countBuild(shot, ctx);
    return ctx;
  }

  private async chainImages(shot: ShotRecord, output: string, frame: number): Promise<ReferenceImages> {
    const { objects, maxPixels } = this.opts;
    const reference = await readInputImage(objects, output, `frames[${frame - 1}] output`, maxPixels);
    const bgKey = shot.inputs.background;
    const background = bgKey ? await readInputImage(objects, bgKey, 'background', maxPixels) : undefined;
    return { reference, background };
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
