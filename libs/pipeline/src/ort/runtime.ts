/**
 * The one module that imports onnxruntime-node. Everything else speaks in {@link Tensor}s
 * (float32 data + dims) and {@link GraphSession}s, so the orchestrator stays testable and ORT's
 * types never leak.
 *
 * Execution providers come from an ordered preference (`cuda:<device>`, `cpu`); the first one a
 * session can be created with wins, and the choice is reported on the session and the runtime.
 */
import * as ort from 'onnxruntime-node';
import { PipelineError } from '../errors.ts';

/** A dense float32 tensor. `int64` tensors are not needed by the contract's inputs. */
export interface Tensor {
  data: Float32Array;
  dims: number[];
}

export const tensor = (data: Float32Array, dims: number[]): Tensor => ({ data, dims });

/** Name, element type and shape of a graph input or output; symbolic dims stay strings. */
export interface TensorInfo {
  name: string;
  type: string;
  dims: (number | string)[];
}

/** `cuda:0`, `cuda:1`, …, or `cpu`. */
export type ProviderSpec = string;

export interface RuntimeOptions {
  /** Ordered preference; the first provider a session opens with is used. Default `['cpu']`. */
  providers?: ProviderSpec[];
  /** Threads inside one operator (0 = ORT's default: one per core). */
  intraOpThreads?: number;
  /** Threads across independent operators (0 = ORT's default). */
  interOpThreads?: number;
}

export interface GraphSession {
  readonly graph: string;
  readonly provider: ProviderSpec;
  readonly inputs: TensorInfo[];
  readonly outputs: TensorInfo[];
  run(feeds: Record<string, Tensor>, outputNames?: string[]): Promise<Record<string, Tensor>>;
  dispose(): Promise<void>;
}

function providerConfig(spec: ProviderSpec): ort.InferenceSession.ExecutionProviderConfig {
  const m = /^cuda(?::(\d+))?$/.exec(spec);
  if (m) return { name: 'cuda', deviceId: Number(m[1] ?? 0) } as ort.InferenceSession.ExecutionProviderConfig;
  if (spec === 'cpu') return 'cpu';
  throw new PipelineError('INVALID_KNOB', `unknown execution provider "${spec}" (use cuda:<device> or cpu)`, 'providers');
}

function info(meta: readonly ort.InferenceSession.ValueMetadata[]): TensorInfo[] {
  return meta.map((m) =>
    m.isTensor
      ? { name: m.name, type: m.type, dims: [...m.shape] }
      : { name: m.name, type: 'non-tensor', dims: [] },
  );
}

/** Time spent inside ORT `run()` calls, per graph and in total (for benches and metrics). */
export class RunStats {
  runs = 0;
  seconds = 0;
  readonly byGraph = new Map<string, { runs: number; seconds: number }>();
  record(graph: string, seconds: number) {
    this.runs++;
    this.seconds += seconds;
    const g = this.byGraph.get(graph) ?? { runs: 0, seconds: 0 };
    g.runs++;
    g.seconds += seconds;
    this.byGraph.set(graph, g);
  }
  reset() {
    this.runs = 0;
    this.seconds = 0;
    this.byGraph.clear();
  }
}

class OrtGraphSession implements GraphSession {
  readonly inputs: TensorInfo[];
  readonly outputs: TensorInfo[];
  constructor(
    readonly graph: string,
    readonly provider: ProviderSpec,
    private readonly session: ort.InferenceSession,
    private readonly stats: RunStats,
  ) {
    this.inputs = info(session.inputMetadata);
    this.outputs = info(session.outputMetadata);
  }

  async run(feeds: Record<string, Tensor>, outputNames?: string[]): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor('float32', t.data, t.dims);
    let result: ort.InferenceSession.ReturnType;
    const t0 = performance.now();
    try {
      result = outputNames ? await this.session.run(ortFeeds, outputNames) : await this.session.run(ortFeeds);
      this.stats.record(this.graph, (performance.now() - t0) / 1000);
    } catch (e) {
      const shapes = Object.entries(feeds)
        .map(([n, t]) => `${n}[${t.dims.join(',')}]`)
        .join(' ');
      throw new PipelineError('RUNTIME', `graph ${this.graph} failed (${(e as Error).message}); inputs: ${shapes}`);
    }
    const out: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(result)) {
      out[name] = { data: t.data as Float32Array, dims: t.dims.map(Number) };
      t.dispose?.();
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/** Opens sessions with one provider preference and thread setting. */
export class OrtRuntime {
  private readonly providers: ProviderSpec[];
  /** Provider of the last session opened (what the worker registry reports). */
  provider: ProviderSpec | undefined;
  /** Time inside ORT across every session this runtime opened. */
  readonly stats = new RunStats();

  constructor(private readonly options: RuntimeOptions = {}) {
    this.providers = options.providers?.length ? options.providers : ['cpu'];
    this.providers.forEach(providerConfig); // validate early
  }

  /** Opens `model` (file path or bytes) on the first provider that accepts it. */
  async open(graph: string, model: string | Uint8Array): Promise<GraphSession> {
    const failures: string[] = [];
    for (const spec of this.providers) {
      try {
        const opts: ort.InferenceSession.SessionOptions = {
          executionProviders: [providerConfig(spec)],
          graphOptimizationLevel: 'all',
          intraOpNumThreads: this.options.intraOpThreads ?? 0,
          interOpNumThreads: this.options.interOpThreads ?? 0,
          logSeverityLevel: 3,
        };
        const session =
          typeof model === 'string'
            ? await ort.InferenceSession.create(model, opts)
            : await ort.InferenceSession.create(model, opts);
        this.provider = spec;
        return new OrtGraphSession(graph, spec, session, this.stats);
      } catch (e) {
        failures.push(`${spec}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    throw new PipelineError('RUNTIME', `could not open graph ${graph} on any provider (${failures.join('; ')})`, `graphs.${graph}`);
  }
}
