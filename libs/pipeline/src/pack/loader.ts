/**
 * Loads a model pack folder: reads pack.json (./manifest.ts), verifies every listed file's
 * sha256, and opens graph sessions lazily. Each session is checked against the contract
 * (input/output names and ranks) before it is used; errors name the pack, graph and tensor.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PipelineError } from '../errors.ts';
import { sha256File } from '../hash.ts';
import type { GraphSession, OrtRuntime, TensorInfo } from '../ort/runtime.ts';
import { CORE_GRAPHS, GRAPH_SPECS, type GraphName, type GraphSpec } from './contract.ts';
import { readPackManifest } from './manifest.ts';
import type { PackManifest } from './schema.ts';

/** One file of a pack, with the graph it belongs to and the manifest field that lists it. */
export interface PackFile {
  file: string;
  sha256: string;
  graph: GraphName;
  /** The graph's .onnx file, or one of its external-data files. */
  kind: 'graph' | 'data';
  /** `graphs.<graph>` for a graph file, `graphs.<graph>.data.<i>` for an external-data file. */
  field: string;
}

/**
 * Every file of a pack but pack.json — each graph's .onnx file, then its external-data files —
 * in manifest order, each name once (the schema refuses one name with two hashes).
 */
export function packFileEntries(manifest: PackManifest): PackFile[] {
  const out: PackFile[] = [];
  const seen = new Set<string>();
  const add = (f: PackFile) => {
    if (seen.has(f.file)) return;
    seen.add(f.file);
    out.push(f);
  };
  for (const [name, entry] of Object.entries(manifest.graphs)) {
    const graph = name as GraphName;
    add({ file: entry.file, sha256: entry.sha256, graph, kind: 'graph', field: `graphs.${graph}` });
    (entry.data ?? []).forEach((d, i) => add({ file: d.file, sha256: d.sha256, graph, kind: 'data', field: `graphs.${graph}.data.${i}` }));
  }
  return out;
}

/** The names of every file of a pack but pack.json (graph files and their external-data files). */
export function packFiles(manifest: PackManifest): string[] {
  return packFileEntries(manifest).map((f) => f.file);
}

/** Compares a session's metadata with the contract; returns every mismatch. */
export function checkSessionAgainstContract(graph: GraphName, inputs: TensorInfo[], outputs: TensorInfo[]): string[] {
  const spec: GraphSpec = GRAPH_SPECS[graph];
  const problems: string[] = [];
  const check = (
    kind: 'input' | 'output',
    actual: TensorInfo[],
    required: Record<string, number>,
    optional: Record<string, number> = {},
  ) => {
    const byName = new Map(actual.map((t) => [t.name, t]));
    for (const [name, rank] of Object.entries(required)) {
      const t = byName.get(name);
      if (!t) problems.push(`missing ${kind} tensor "${name}"`);
      else if (t.dims.length !== rank) problems.push(`${kind} "${name}" has rank ${t.dims.length}, contract says ${rank}`);
    }
    for (const t of actual) {
      if (t.name in required) continue;
      if (t.name in optional) {
        if (t.dims.length !== optional[t.name]) {
          problems.push(`${kind} "${t.name}" has rank ${t.dims.length}, contract says ${optional[t.name]}`);
        }
      } else if (kind === 'input') problems.push(`unexpected input tensor "${t.name}" (not in the contract)`);
    }
    for (const t of actual) {
      if (t.type !== 'float32') problems.push(`${kind} "${t.name}" is ${t.type}; the contract's tensors are float32`);
    }
  };
  check('input', inputs, spec.inputs, spec.optionalInputs);
  check('output', outputs, spec.outputs, spec.optionalOutputs);
  return problems;
}

export interface LoadOptions {
  /** Verify the sha256 of each graph file and external-data file at load (default true). */
  verifyHashes?: boolean;
}

export class ModelPack {
  private readonly sessions = new Map<GraphName, Promise<GraphSession>>();

  private constructor(
    readonly dir: string,
    readonly manifest: PackManifest,
    private readonly runtime: OrtRuntime,
  ) {}

  /** `{id}@{version}`, as reported in lineage and logs. */
  get ref(): string {
    return `${this.manifest.id}@${this.manifest.version}`;
  }

  static async load(dir: string, runtime: OrtRuntime, options: LoadOptions = {}): Promise<ModelPack> {
    const { manifest } = await readPackManifest({ dir });
    const id = `${manifest.id}@${manifest.version}`;
    for (const g of CORE_GRAPHS) {
      if (!manifest.graphs[g]) throw new PipelineError('PACK_INVALID', `pack ${id} lacks the core graph ${g}`, `graphs.${g}`);
    }
    for (const f of packFileEntries(manifest)) {
      const path = join(dir, f.file);
      const what = f.kind === 'graph' ? `graph ${f.graph} file ${f.file}` : `graph ${f.graph} data file ${f.file}`;
      try {
        await stat(path);
      } catch {
        throw new PipelineError('PACK_FILE_MISSING', `pack ${id}: ${what} is missing`, f.field);
      }
      if (options.verifyHashes !== false) {
        const actual = await sha256File(path);
        if (actual !== f.sha256) {
          throw new PipelineError('PACK_HASH_MISMATCH', `pack ${id}: ${what} has sha256 ${actual}, pack.json says ${f.sha256}`, f.field);
        }
      }
    }
    return new ModelPack(dir, manifest, runtime);
  }

  has(graph: GraphName): boolean {
    return graph in this.manifest.graphs;
  }

  /** Throws GRAPH_MISSING (before any compute) when a request needs graphs the pack lacks. */
  require(graphs: Iterable<GraphName>, why: string, field: string): void {
    const missing = [...graphs].filter((g) => !this.has(g));
    if (missing.length) {
      throw new PipelineError('GRAPH_MISSING', `${why} needs graph(s) ${missing.join(', ')}, which pack ${this.ref} does not have`, field);
    }
  }

  /** The session of `graph`, opened on first use and checked against the contract. */
  session(graph: GraphName): Promise<GraphSession> {
    let s = this.sessions.get(graph);
    if (!s) {
      s = this.open(graph);
      this.sessions.set(graph, s);
      s.catch(() => this.sessions.delete(graph));
    }
    return s;
  }

  private async open(graph: GraphName): Promise<GraphSession> {
    const entry = this.manifest.graphs[graph];
    if (!entry) throw new PipelineError('GRAPH_MISSING', `pack ${this.ref} has no graph ${graph}`, `graphs.${graph}`);
    // Opened from the path, never from bytes: ORT then finds the graph's external-data files
    // next to it, and a multi-GB graph is not first read into this process's heap.
    const session = await this.runtime.open(graph, join(this.dir, entry.file));
    const problems = checkSessionAgainstContract(graph, session.inputs, session.outputs);
    if (problems.length) {
      await session.dispose();
      throw new PipelineError('PACK_INVALID', `pack ${this.ref}, graph ${graph}: ${problems.join('; ')}`, `graphs.${graph}`);
    }
    return session;
  }

  /** Opens every graph now (warm-up), so the first frame does not pay for it. */
  async openAll(): Promise<void> {
    await Promise.all(Object.keys(this.manifest.graphs).map((g) => this.session(g as GraphName)));
  }

  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) {
      try {
        await (await s).dispose();
      } catch {
        // a session that failed to open has nothing to release
      }
    }
  }
}

/** A static dim of a graph tensor, or an error naming it when the pack left it symbolic. */
export function staticDim(session: GraphSession, tensorName: string, axis: number, kind: 'input' | 'output' = 'input'): number {
  const list = kind === 'input' ? session.inputs : session.outputs;
  const t = list.find((i) => i.name === tensorName);
  const d = t?.dims[axis];
  if (typeof d !== 'number' || d <= 0) {
    throw new PipelineError(
      'PACK_INVALID',
      `graph ${session.graph}: ${kind} ${tensorName} axis ${axis} must be a fixed size (got ${String(d)})`,
      `graphs.${session.graph}`,
    );
  }
  return d;
}
