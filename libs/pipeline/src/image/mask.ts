/**
 * Mask operations (contract §2.1 step 4, §G8 post-processing, §G9 post-processing): masks are
 * planar float32 in [0,1], usually 1 channel. Every function returns a new Planar.
 */
import { resizeBicubic } from './resample.ts';
import { planar } from './tensor.ts';
import type { Planar } from './tensor.ts';

const like = (p: Planar): Planar => planar(p.channels, p.height, p.width);

/** Clamps every value to [0,1] (the clamp after every mask resize, §G8/§G9). NaN becomes 0. */
export function clamp01(p: Planar): Planar {
  const out = like(p);
  for (let i = 0; i < p.data.length; i++) {
    const v = p.data[i];
    out.data[i] = v > 1 ? 1 : v >= 0 ? v : 0;
  }
  return out;
}

/** Binarises: 1 where p ≥ thr, else 0 — the complement of {@link whiteOut}'s "keep" test. */
export function threshold(p: Planar, thr: number): Planar {
  const out = like(p);
  for (let i = 0; i < p.data.length; i++) out.data[i] = p.data[i] >= thr ? 1 : 0;
  return out;
}

/**
 * Max-pool dilation with a k×k window, stride 1, padding k//2 (PyTorch `max_pool2d`, whose padding
 * never wins) — the 11×11 dilation of the reference mask (§G9). Computed separably (rows, then
 * columns), which equals the square window for max. `k` must be odd so the size is kept.
 */
export function dilateMax(p: Planar, k = 11): Planar {
  if (!Number.isInteger(k) || k < 1 || k % 2 === 0) throw new RangeError(`dilation window must be a positive odd integer, got ${k}`);
  const r = (k - 1) / 2;
  const { channels: C, height: H, width: W } = p;
  const tmp = new Float32Array(p.data.length);
  for (let row = 0; row < C * H; row++) {
    const o = row * W;
    for (let x = 0; x < W; x++) {
      let m = -Infinity;
      const hi = Math.min(W - 1, x + r);
      for (let xx = Math.max(0, x - r); xx <= hi; xx++) m = Math.max(m, p.data[o + xx]);
      tmp[o + x] = m;
    }
  }
  const out = like(p);
  for (let c = 0; c < C; c++) {
    const plane = c * H * W;
    for (let y = 0; y < H; y++) {
      const lo = Math.max(0, y - r);
      const hi = Math.min(H - 1, y + r);
      for (let x = 0; x < W; x++) {
        let m = -Infinity;
        for (let yy = lo; yy <= hi; yy++) m = Math.max(m, tmp[plane + yy * W + x]);
        out.data[plane + y * W + x] = m;
      }
    }
  }
  return out;
}

/**
 * where(mask < thr, image, +1) (contract §2.1 step 4 and the "white-out reference" of §2.2):
 * paints white wherever the 1-channel mask (same H×W as the image) says foreground.
 */
export function whiteOut(image: Planar, mask: Planar, thr: number): Planar {
  if (mask.channels !== 1 || mask.height !== image.height || mask.width !== image.width) {
    throw new RangeError(`mask ${mask.channels}×${mask.height}×${mask.width} does not fit image ${image.height}×${image.width}`);
  }
  const out = like(image);
  const n = image.height * image.width;
  for (let c = 0; c < image.channels; c++) {
    for (let i = 0; i < n; i++) out.data[c * n + i] = mask.data[i] < thr ? image.data[c * n + i] : 1;
  }
  return out;
}

/**
 * Sketch-mask post-processing (contract §G8): plain bicubic (a = −0.75, no antialias) from the
 * mask graph's size (1024²) back to (H,W), clamp to [0,1], then plain bicubic with scale factor
 * 1/factor (step = factor, output floor(H/factor)×floor(W/factor)) — not re-clamped, not binarised.
 * The result is the UNet `mask` input `[1,1,h,w]` when factor = 8.
 */
export function maskToLatent(mask: Planar, H: number, W: number, factor: number): Planar {
  if (!(factor > 0) || !Number.isFinite(factor)) throw new RangeError(`factor must be positive, got ${factor}`);
  const full = clamp01(resizeBicubic(mask, H, W));
  const s = 1 / factor;
  return resizeBicubic(full, Math.floor(H * s), Math.floor(W * s), { h: s, w: s });
}

/** Options of {@link floodFillForeground}. */
export interface FloodFillOptions {
  /** A pixel is a line when its channel-mean value is > this (model-sketch convention). Default 0. */
  lineThreshold?: number;
}

/**
 * Classical foreground mask for packs without a `sketch_mask` graph (a stand-in for §G8).
 *
 * Input: a model-sketch tensor (white lines +1 on black paper −1, any channel count; the channel
 * mean is used). Algorithm: a pixel is "line" when its mean > `lineThreshold` (default 0). Every
 * non-line border pixel seeds an "outside" region that grows through non-line pixels with
 * 4-connectivity (iterative FIFO queue over an Int32Array, no recursion, O(H·W)). Because the
 * fill cannot step diagonally, any 8-connected closed outline (1-px diagonal strokes included)
 * keeps its interior; a single-pixel gap lets the fill in.
 * Foreground = everything not outside (the lines and the paper they enclose) = 1; outside = 0.
 * Returns a 1-channel Planar of the sketch's size. An open shape encloses nothing: only its
 * line pixels are foreground.
 */
export function floodFillForeground(sketch: Planar, opts: FloodFillOptions = {}): Planar {
  const thr = opts.lineThreshold ?? 0;
  const { channels: C, height: H, width: W } = sketch;
  const n = H * W;
  const line = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += sketch.data[c * n + i];
    line[i] = s / C > thr ? 1 : 0;
  }
  const outside = new Uint8Array(n);
  const queue = new Int32Array(n);
  let head = 0;
  let tail = 0;
  const seed = (i: number): void => {
    if (!line[i] && !outside[i]) {
      outside[i] = 1;
      queue[tail++] = i;
    }
  };
  for (let x = 0; x < W; x++) {
    seed(x);
    seed((H - 1) * W + x);
  }
  for (let y = 0; y < H; y++) {
    seed(y * W);
    seed(y * W + W - 1);
  }
  while (head < tail) {
    const i = queue[head++];
    const x = i % W;
    if (x > 0) seed(i - 1);
    if (x < W - 1) seed(i + 1);
    if (i >= W) seed(i - W);
    if (i < n - W) seed(i + W);
  }
  const out = planar(1, H, W);
  for (let i = 0; i < n; i++) out.data[i] = outside[i] ? 0 : 1;
  return out;
}
