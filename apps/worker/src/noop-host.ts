/**
 * A no-op inference engine for measuring the control plane (queues, S3, records, API) without
 * the model: `WORKER_ENGINE=noop`. It answers like the pipeline host — a valid reference context,
 * one progress step, the sketch itself as the "colorized" image — in microseconds. Never used
 * unless configured; the worker logs the engine at boot.
 */
import {
  PipelineError,
  referenceContextKey,
  serializeReferenceContext,
  type FrameOutput,
  type HostInfo,
  type JobOptions,
  type PackManifest,
  type Planar,
  type PrepareOutput,
  type ResolvedSettings,
} from '@celfarm/pipeline';

export class NoopHost {
  readonly ready: Promise<HostInfo>;
  readonly exited: Promise<Error>;
  private stop!: (e: Error) => void;

  constructor(private readonly manifest: PackManifest) {
    this.ready = Promise.resolve({
      provider: 'noop',
      pack: `${manifest.id}@${manifest.version}`,
      licence: { name: manifest.licence.name, commercialUse: manifest.licence.commercialUse },
    });
    this.exited = new Promise((resolve) => (this.stop = resolve));
  }

  async prepare(inputs: { reference?: Planar; background?: Planar }, s: ResolvedSettings): Promise<PrepareOutput> {
    const key = referenceContextKey(this.manifest, s, inputs);
    const zero = { data: new Float32Array(1), dims: [1, 1, 1] };
    const context = serializeReferenceContext({
      key, pack: `${this.manifest.id}@${this.manifest.version}`, width: s.width, height: s.height, split: false,
      styleGate: 0, bgInjectGate: 0, loraGate: 0, emb: zero, contextBg: null, style: null, hsBg: null, blankControl: null, referenceMask: null, injection: null,
    });
    return { key, context, referenceMask: null, seconds: 0 };
  }

  async frame(_context: Uint8Array, sketch: Planar, s: ResolvedSettings, opts: JobOptions = {}): Promise<FrameOutput> {
    if (opts.signal?.aborted) throw new PipelineError('CANCELLED', 'cancelled before sampling');
    opts.onProgress?.({ stage: 'sample', step: 1, steps: 1 });
    return { images: [sketch], box: { left: 0, top: 0, width: sketch.width, height: sketch.height }, sketchMask: null, seed: s.seed, timings: {} };
  }

  async close(): Promise<void> {
    this.stop(new Error('noop engine closed'));
  }
}
