/**
 * The size/ratio embedding `y` of contract §1 ("Size/ratio embedding", no graph): two sinusoids
 * of the reference's aspect relative to the target, each half of the encoders' `y` width.
 */
import type { Tensor } from './ort/runtime.ts';

/** `dim`-wide sinusoid [cos(v·f_0..), sin(v·f_0..)], f_i = exp(−ln(10000)·i/(dim/2)). */
export function sinusoid(v: number, dim: number): Float32Array {
  const half = dim / 2;
  const out = new Float32Array(dim);
  for (let i = 0; i < half; i++) {
    const f = Math.exp((-Math.log(10000) * i) / half);
    out[i] = Math.cos(v * f);
    out[half + i] = Math.sin(v * f);
  }
  return out;
}

/**
 * y [1, dim] for an image of native size (oh, ow) and target (H, W). Small references are biased
 * upwards exactly as the app does (ih = oh + max(H, W) when either side is smaller).
 */
export function sizeEmbedding(oh: number, ow: number, H: number, W: number, dim: number): Tensor {
  let ih = oh;
  let iw = ow;
  if (oh < H || ow < W) {
    ih = oh + Math.max(H, W);
    iw = (ow / oh) * ih;
  }
  const data = new Float32Array(dim);
  data.set(sinusoid(ih / H, dim / 2), 0);
  data.set(sinusoid(iw / W, dim / 2), dim / 2);
  return { data, dims: [1, dim] };
}
