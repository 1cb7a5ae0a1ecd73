/**
 * Resampling kernels that reproduce PyTorch's `F.interpolate` numerically (contract §6 item 1, §G1
 * and §G9), in pure TypeScript over planar float32 images. sharp's kernels are close but not the
 * same, and the model saw exactly these numbers at inference time in the reference app.
 *
 * All three resizers are separable: per call we precompute one tap table per axis (source indices
 * and weights, padded to a fixed number of taps per output so the inner loops are flat), resample
 * along the width (each row) into a float64 buffer, then along the height (each column), and store
 * float32. PyTorch computes in float32 (weights too), so results agree to ~1e-6, not bit-exactly.
 */
import { planar } from './tensor.ts';
import type { Planar } from './tensor.ts';

/** Per-axis tap table: output `i` reads `idx[i*n + k]` with weight `w[i*n + k]`, k < n. */
interface Taps {
  n: number;
  idx: Int32Array;
  w: Float64Array;
}

// PyTorch's cubic_convolution1/2 (aten/src/ATen/native/UpSample.h), same evaluation order.
const cc1 = (x: number, a: number): number => ((a + 2) * x - (a + 3)) * x * x + 1;
const cc2 = (x: number, a: number): number => ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;

/** Keys cubic convolution kernel with parameter `a` (−0.75 PyTorch plain bicubic, −0.5 AA/PIL). */
export function keysCubic(x: number, a: number): number {
  const t = Math.abs(x);
  if (t < 1) return cc1(t, a);
  if (t < 2) return cc2(t, a);
  return 0;
}

/** Triangle (tent) kernel used by antialiased bilinear. */
const triangle = (x: number): number => {
  const t = Math.abs(x);
  return t < 1 ? 1 - t : 0;
};

function checkSize(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
}

/**
 * Taps of PyTorch plain bicubic (antialias=False, align_corners=False) along one axis:
 * src = (i+0.5)·step − 0.5, f = floor(src), taps f−1..f+2 clamped to the edge, weights
 * K(t+1), K(t), K(1−t), K(2−t) with t = src − f and a = −0.75 (sum to 1 by construction).
 */
function cubicTaps(inSize: number, outSize: number, step: number): Taps {
  const n = 4;
  const idx = new Int32Array(outSize * n);
  const w = new Float64Array(outSize * n);
  const a = -0.75;
  const last = inSize - 1;
  for (let i = 0; i < outSize; i++) {
    const src = (i + 0.5) * step - 0.5;
    const f = Math.floor(src);
    const t = src - f;
    const o = i * n;
    w[o] = cc2(t + 1, a);
    w[o + 1] = cc1(t, a);
    w[o + 2] = cc1(1 - t, a);
    w[o + 3] = cc2(2 - t, a);
    for (let k = 0; k < n; k++) idx[o + k] = Math.min(Math.max(f - 1 + k, 0), last);
  }
  return { n, idx, w };
}

/**
 * Taps of PyTorch's antialiased separable resampling (`_upsample_*_aa`, float path), exactly as
 * contract §G1 states: support = (interpSize/2)·step and inv = 1/step when step ≥ 1, else
 * support = interpSize/2 and inv = 1; centre c = step·(i+0.5); taps j from
 * max(trunc(c−support+0.5), 0) to min(trunc(c+support+0.5), in)−1; weight filter((j−c+0.5)·inv),
 * normalised to sum 1 (left as is when the sum is 0, as PyTorch does). Out-of-range taps are
 * dropped (and the rest renormalised), not clamped.
 */
function aaTaps(inSize: number, outSize: number, step: number, interpSize: number, filter: (x: number) => number): Taps {
  const support = step >= 1 ? (interpSize / 2) * step : interpSize / 2;
  const inv = step >= 1 ? 1 / step : 1;
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  let n = 1;
  for (let i = 0; i < outSize; i++) {
    const c = step * (i + 0.5);
    lo[i] = Math.max(Math.trunc(c - support + 0.5), 0);
    hi[i] = Math.min(Math.trunc(c + support + 0.5), inSize);
    n = Math.max(n, hi[i] - lo[i]);
  }
  const idx = new Int32Array(outSize * n); // padding taps: index 0, weight 0
  const w = new Float64Array(outSize * n);
  for (let i = 0; i < outSize; i++) {
    const c = step * (i + 0.5);
    const o = i * n;
    let total = 0;
    for (let j = lo[i], k = 0; j < hi[i]; j++, k++) {
      const v = filter((j - c + 0.5) * inv);
      idx[o + k] = j;
      w[o + k] = v;
      total += v;
    }
    if (total !== 0) for (let k = 0; k < n; k++) w[o + k] /= total;
  }
  return { n, idx, w };
}

/** Applies width taps then height taps (float64 intermediate), storing float32. */
/** True when the taps map every output pixel to its own input pixel with weight exactly 1. */
function isIdentity(t: Taps, inSize: number, outSize: number): boolean {
  if (inSize !== outSize) return false;
  for (let o = 0; o < outSize; o++) {
    for (let k = 0; k < t.n; k++) {
      const w = t.w[o * t.n + k];
      if (t.idx[o * t.n + k] === o ? w !== 1 : w !== 0) return false;
    }
  }
  return true;
}

function separable(src: Planar, outH: number, outW: number, tx: Taps, ty: Taps): Planar {
  const { channels: C, height: inH, width: inW, data } = src;
  checkSize('source channels', C);
  checkSize('source height', inH);
  checkSize('source width', inW);
  if (data.length !== C * inH * inW) throw new RangeError('planar data length does not match its shape');
  // An axis whose taps are the identity (same size, weight 1 on its own pixel) is skipped: the
  // result is bit-identical and same-size fits (a 512² sketch into 512²) cost nothing.
  const sameX = isIdentity(tx, inW, outW);
  const sameY = isIdentity(ty, inH, outH);
  if (sameX && sameY) return { data: data.slice(), channels: C, height: outH, width: outW };
  const tmp: Float32Array | Float64Array = sameX ? data : new Float64Array(C * inH * outW);
  const { n: nx, idx: ix, w: wx } = tx;
  for (let r = 0; r < C * inH && !sameX; r++) {
    const sRow = r * inW;
    const dRow = r * outW;
    for (let x = 0; x < outW; x++) {
      const o = x * nx;
      let acc = 0;
      for (let k = 0; k < nx; k++) acc += wx[o + k] * data[sRow + ix[o + k]];
      tmp[dRow + x] = acc;
    }
  }
  if (sameY) return { data: Float32Array.from(tmp), channels: C, height: outH, width: outW };
  const out = planar(C, outH, outW);
  const od = out.data;
  const { n: ny, idx: iy, w: wy } = ty;
  for (let c = 0; c < C; c++) {
    const sPlane = c * inH * outW;
    const dPlane = c * outH * outW;
    for (let y = 0; y < outH; y++) {
      const o = y * ny;
      const dRow = dPlane + y * outW;
      for (let x = 0; x < outW; x++) {
        let acc = 0;
        for (let k = 0; k < ny; k++) acc += wy[o + k] * tmp[sPlane + iy[o + k] * outW + x];
        od[dRow + x] = acc;
      }
    }
  }
  return out;
}

/**
 * PyTorch `F.interpolate(mode='bicubic', align_corners=False, antialias=False)` (contract §6
 * item 1, "warp_resize"; also ONNX Resize cubic a=−0.75 half_pixel exclude_outside=0): used for
 * VAE inputs, ISNet in/out and every mask resize. Per axis src = (dst+0.5)·step − 0.5 with
 * step = in/out, or 1/scaleFactor when `scaleFactor` is given (as PyTorch does when called with
 * `scale_factor=`); taps floor(src)−1..+2 clamped to the edge; Keys a = −0.75; no renormalisation.
 * Values are not clamped (bicubic overshoots). Downscaling with it aliases — as in the app.
 */
export function resizeBicubic(src: Planar, outH: number, outW: number, scaleFactor?: { h: number; w: number }): Planar {
  checkSize('outH', outH);
  checkSize('outW', outW);
  const stepH = scaleFactor ? 1 / scaleFactor.h : src.height / outH;
  const stepW = scaleFactor ? 1 / scaleFactor.w : src.width / outW;
  if (!(stepH > 0 && stepW > 0 && Number.isFinite(stepH) && Number.isFinite(stepW))) {
    throw new RangeError('scaleFactor must be positive and finite');
  }
  return separable(src, outH, outW, cubicTaps(src.width, outW, stepW), cubicTaps(src.height, outH, stepH));
}

/** PyTorch `area_pixel_compute_scale` (no explicit scale factor). */
const areaScale = (inSize: number, outSize: number, alignCorners: boolean): number =>
  alignCorners ? (outSize > 1 ? (inSize - 1) / (outSize - 1) : 0) : inSize / outSize;

/**
 * PyTorch `F.interpolate(mode='bicubic', antialias=True)` (Keys a = −0.5, PIL-like), the
 * algorithm of contract §G1: the CLIP resize (`alignCorners: true`, step = (in−1)/(out−1), 0 when
 * out = 1) and the sketch fit-resize of §2.1 (`alignCorners: false`, step = in/out).
 *
 * Doubt, kept literal on purpose: with align_corners=True PyTorch's AA kernel only changes the
 * step, not the centre — c = step·(i+0.5) still (its `align_corners_delta` is 0 whenever antialias
 * is on), and edge taps are dropped rather than clamped. So unlike plain align-corners resizing,
 * corner pixels are NOT reproduced exactly on upscale; the contract reports this matching torch
 * to 1e-15, so we follow it rather than "fixing" it.
 */
export function resizeBicubicAA(src: Planar, outH: number, outW: number, { alignCorners }: { alignCorners: boolean }): Planar {
  checkSize('outH', outH);
  checkSize('outW', outW);
  const f = (x: number): number => keysCubic(x, -0.5);
  const tx = aaTaps(src.width, outW, areaScale(src.width, outW, alignCorners), 4, f);
  const ty = aaTaps(src.height, outH, areaScale(src.height, outH, alignCorners), 4, f);
  return separable(src, outH, outW, tx, ty);
}

/**
 * PyTorch/torchvision bilinear with antialias=True, align_corners=False (contract §G9, RMBG-2.0
 * in/out resize): the same separable scheme as {@link resizeBicubicAA} with a triangle filter,
 * support = step when step ≥ 1, else 1.
 */
export function resizeBilinearAA(src: Planar, outH: number, outW: number): Planar {
  checkSize('outH', outH);
  checkSize('outW', outW);
  const tx = aaTaps(src.width, outW, src.width / outW, 2, triangle);
  const ty = aaTaps(src.height, outH, src.height / outH, 2, triangle);
  return separable(src, outH, outW, tx, ty);
}
