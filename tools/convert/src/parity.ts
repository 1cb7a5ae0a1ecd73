/**
 * Parity of a converted pack with the PyTorch modules it came from: the Python side writes each
 * graph's inputs and outputs (`<graph>/<case>/in|out/<tensor>` in one safetensors file); here the
 * pack's graphs run on the same inputs through the project's own onnxruntime-node, and every
 * output is compared by its largest absolute difference.
 */
import { readFile } from 'node:fs/promises';
import { decodeSafetensors } from '@celfarm/pipeline/safetensors';
import { ModelPack } from '@celfarm/pipeline/pack/loader';
import { OrtRuntime, type Tensor } from '@celfarm/pipeline/ort/runtime';
import type { GraphName } from '@celfarm/pipeline/pack/contract';

export interface ParityRow {
  graph: string;
  case: string;
  output: string;
  maxAbs: number;
  /** Largest |reference| of that output, to read maxAbs against. */
  scale: number;
  /** The unit the runtime reads this output in (1 but for PARITY_UNITS); judge maxAbs / unit. */
  unit: number;
}

/**
 * Outputs the runtime reads in a unit other than 1, keyed `<graph>/<output>`. lineart_denoise's
 * `lines` are on the network's 0–255 scale and the runtime maps them with clamp(y, 0, 255) / 127.5
 * − 1 (contract G10), so a difference δ there is δ / 127.5 in the sketch; fp32 rounding at that
 * scale alone is about 1e-5.
 */
export const PARITY_UNITS: Readonly<Record<string, number>> = { 'lineart_denoise/lines': 127.5 };

/** A row's difference in the unit the runtime reads the output in. */
export const parityError = (r: ParityRow): number => r.maxAbs / r.unit;

export function maxAbsDiff(a: Tensor, b: Tensor): number {
  if (a.dims.join() !== b.dims.join()) throw new Error(`shape [${a.dims.join(', ')}] vs [${b.dims.join(', ')}]`);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i]! - b.data[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Runs every case of `parityFile` on the pack in `packDir`; one row per graph output. */
export async function checkParity(packDir: string, parityFile: string, runtime = new OrtRuntime()): Promise<ParityRow[]> {
  const { tensors } = decodeSafetensors(new Uint8Array(await readFile(parityFile)), 'parity');
  const cases = new Map<string, { inputs: Record<string, Tensor>; outputs: Record<string, Tensor> }>();
  for (const [key, t] of Object.entries(tensors)) {
    const [graph, name, kind, tensorName] = key.split('/') as [string, string, string, string];
    const id = `${graph}/${name}`;
    const c = cases.get(id) ?? { inputs: {}, outputs: {} };
    (kind === 'in' ? c.inputs : c.outputs)[tensorName] = t;
    cases.set(id, c);
  }
  const pack = await ModelPack.load(packDir, runtime);
  const rows: ParityRow[] = [];
  try {
    for (const [id, c] of cases) {
      const [graph, name] = id.split('/') as [GraphName, string];
      const session = await pack.session(graph);
      const got = await session.run(c.inputs);
      for (const [output, want] of Object.entries(c.outputs)) {
        const actual = got[output];
        if (!actual) throw new Error(`graph ${graph} gave no output ${output}`);
        rows.push({
          graph,
          case: name,
          output,
          maxAbs: maxAbsDiff(actual, want),
          scale: want.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0),
          unit: PARITY_UNITS[`${graph}/${output}`] ?? 1,
        });
      }
    }
  } finally {
    await pack.dispose();
  }
  return rows;
}
