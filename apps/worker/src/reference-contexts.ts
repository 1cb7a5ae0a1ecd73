/**
 * Reference contexts (ARCHITECTURE.md "The job model"): built once per distinct reference side
 * and reused by every frame and every worker. Lookup order: this process's memory (a few
 * entries) → the object store (`cache/reference-contexts/<key>.safetensors`) → build on the
 * inference thread and store, so no other worker recomputes it.
 */
import { deserializeReferenceContext, type PipelineHost, type Planar, type PrepareOutput, type ResolvedSettings } from '@celfarm/pipeline';
import { referenceContextKey as contextObjectKey, type ObjectStore } from '@celfarm/storage';
import type { FarmMetrics } from '@celfarm/metrics';
import { Lru } from './lru.ts';

export type ContextSource = 'memory' | 'store' | 'miss';

/** What a build needs: decoded reference (+ background) and the shot's settings. */
export interface ContextInputs {
  reference: Planar;
  background?: Planar;
  settings: ResolvedSettings;
}

export interface ObtainedContext {
  key: string;
  bytes: Uint8Array;
  source: ContextSource;
  /** Set when this call built the context: the inference seconds it took and its reference mask. */
  built?: Pick<PrepareOutput, 'seconds' | 'referenceMask'>;
}

export interface ReferenceContextsOptions {
  objects: ObjectStore;
  host: Pick<PipelineHost, 'prepare'>;
  /** Object key prefix (S3_PREFIX). */
  prefix: string;
  metrics?: Pick<FarmMetrics, 'contextCache'>;
  /** Contexts kept in memory (default 4). */
  capacity?: number;
  /** A stored context that does not parse (it is rebuilt). */
  onUnreadable?: (key: string, error: Error) => void;
}

export class ReferenceContexts {
  private readonly memory: Lru<string, Uint8Array>;
  // Two frame jobs of one shot can miss at once (prefetch): they share one build.
  private readonly building = new Map<string, Promise<ObtainedContext>>();

  constructor(private readonly opts: ReferenceContextsOptions) {
    this.memory = new Lru(opts.capacity ?? 4);
  }

  objectKey(key: string): string {
    return contextObjectKey(this.opts.prefix, key);
  }

  /**
   * The context stored under `key`, or built from `load()` when neither memory nor the store has
   * it. `load` runs only on a miss (it may fetch and decode images).
   */
  async obtain(key: string, load: () => Promise<ContextInputs>): Promise<ObtainedContext> {
    const cached = this.memory.get(key);
    if (cached) return this.count({ key, bytes: cached, source: 'memory' });
    const stored = await this.opts.objects.get(this.objectKey(key));
    if (stored && this.readable(key, stored)) {
      this.memory.set(key, stored);
      return this.count({ key, bytes: stored, source: 'store' });
    }
    let build = this.building.get(key);
    if (!build) {
      build = this.build(load).finally(() => this.building.delete(key));
      this.building.set(key, build);
    }
    return build;
  }

  /**
   * A stored context is derived data: one that does not parse (a partial object from a store
   * without atomic writes, read while another worker wrote it; a truncated upload) is rebuilt
   * and written again rather than failing the frames that need it.
   */
  private readable(key: string, bytes: Uint8Array): boolean {
    try {
      deserializeReferenceContext(bytes);
      return true;
    } catch (e) {
      this.opts.onUnreadable?.(key, e instanceof Error ? e : new Error(String(e)));
      return false;
    }
  }

  private async build(load: () => Promise<ContextInputs>): Promise<ObtainedContext> {
    const { reference, background, settings } = await load();
    const prepared = await this.opts.host.prepare({ reference, background }, settings);
    await this.opts.objects.put(this.objectKey(prepared.key), prepared.context, 'application/octet-stream');
    this.memory.set(prepared.key, prepared.context);
    return this.count({
      key: prepared.key,
      bytes: prepared.context,
      source: 'miss',
      built: { seconds: prepared.seconds, referenceMask: prepared.referenceMask },
    });
  }

  private count(c: ObtainedContext): ObtainedContext {
    this.opts.metrics?.contextCache.inc({ result: c.source });
    return c;
  }
}

/** The reference mask carried in serialised context bytes (split modes), as a planar [0, 1] mask. */
export function referenceMaskOf(bytes: Uint8Array): Planar | null {
  const m = deserializeReferenceContext(bytes).referenceMask;
  if (!m) return null;
  return { data: m.data, channels: 1, height: m.dims[2]!, width: m.dims[3]! };
}
