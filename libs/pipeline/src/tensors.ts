/** Small pure helpers over {@link Tensor} (float32 data + dims) used by the orchestrator. */
import type { Planar } from './image/tensor.ts';
import type { Tensor } from './ort/runtime.ts';

export const numel = (dims: number[]): number => dims.reduce((a, b) => a * b, 1);

export const zeros = (dims: number[]): Tensor => ({ data: new Float32Array(numel(dims)), dims });
export const filled = (dims: number[], v: number): Tensor => ({ data: new Float32Array(numel(dims)).fill(v), dims });
export const scalar = (v: number): Tensor => ({ data: Float32Array.of(v), dims: [] });

/** A batch-1 tensor [1, C, H, W] viewing a Planar's data (no copy). */
export const fromPlanar = (p: Planar): Tensor => ({ data: p.data, dims: [1, p.channels, p.height, p.width] });

/** Entry `i` of a batched [B, C, H, W] tensor as a Planar (copy). */
export function toPlanar(t: Tensor, i = 0): Planar {
  const [, c, h, w] = t.dims as [number, number, number, number];
  const n = c * h * w;
  return { data: t.data.slice(i * n, (i + 1) * n), channels: c, height: h, width: w };
}

export function scale(t: Tensor, k: number): Tensor {
  if (k === 1) return t;
  const out = new Float32Array(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = t.data[i]! * k;
  return { data: out, dims: t.dims };
}

/** Concatenates tensors along the batch axis (all other dims must match). */
export function concatBatch(ts: Tensor[]): Tensor {
  if (ts.length === 1) return ts[0]!;
  const total = ts.reduce((a, t) => a + t.data.length, 0);
  const out = new Float32Array(total);
  let o = 0;
  for (const t of ts) {
    out.set(t.data, o);
    o += t.data.length;
  }
  return { data: out, dims: [ts.reduce((a, t) => a + t.dims[0]!, 0), ...ts[0]!.dims.slice(1)] };
}

/** Repeats a tensor `n` times along the batch axis. */
export const tile = (t: Tensor, n: number): Tensor => (n === 1 ? t : concatBatch(new Array<Tensor>(n).fill(t)));

/** Batch entries [start, start + count) of a tensor. */
export function sliceBatch(t: Tensor, start: number, count: number): Tensor {
  const per = numel(t.dims.slice(1));
  return { data: t.data.subarray(start * per, (start + count) * per), dims: [count, ...t.dims.slice(1)] };
}

/** (1 − m)·a + m·b, elementwise. */
export function lerp(a: Tensor, b: Tensor, m: number): Tensor {
  const out = new Float32Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = (1 - m) * a.data[i]! + m * b.data[i]!;
  return { data: out, dims: a.dims };
}
