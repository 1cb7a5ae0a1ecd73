/**
 * Sketch preprocessing around the line-extractor graphs and the `invert-webui` preprocessor
 * (contract §1 G10). Each official extractor has its own pre- and post-processing around its
 * network; the graph is the network alone, so what happens on either side of it lives here:
 *
 * | extractor | graph input | graph output → model sketch (white lines on black, [−1, 1]) |
 * |---|---|---|
 * | `lineart_keras` | [3,1,S,S]: per colour channel, (u8 − blur_σ3(u8)) / 127.5, over the global max | max over the 3 outputs, < 0.1 → 0, (p − 0.5)·2 (not negated) |
 * | `lineart` | [1,3,S,S]: u8 / 127.5 − 1 | −y |
 * | `lineart_denoise` | [1,1,S,S]: red channel as 0–255 | −(clamp(y, 0, 255) / 127.5 − 1) |
 * | `lineart_sk` | [1,3,S,S]: raw 0–255 | −y (so lines span [−1, 0], as the app does) |
 *
 * The extractor sees the sketch stretched to S×S (PIL bicubic with antialias, in 8 bits); its S×S
 * result is then resized once, straight to the sketch's fitted size.
 */
import type { LineExtractor } from '../pack/contract.ts';
import type { Tensor } from '../ort/runtime.ts';
import { resizeBicubicAA } from './resample.ts';
import { planar, type Planar } from './tensor.ts';

/** [−1, 1] → 8-bit levels, as the decoded image had them (round, clamp). */
export function toUint8Levels(img: Planar): Planar {
  const out = planar(img.channels, img.height, img.width);
  for (let i = 0; i < img.data.length; i++) out.data[i] = Math.min(255, Math.max(0, Math.round((img.data[i]! + 1) * 127.5)));
  return out;
}

/** The 1-D Gaussian of OpenCV's `getGaussianKernel(ksize, sigma)`, normalised to sum 1. */
export function gaussianKernel(ksize: number, sigma: number): Float64Array {
  const k = new Float64Array(ksize);
  const mid = (ksize - 1) / 2;
  let sum = 0;
  for (let i = 0; i < ksize; i++) sum += k[i] = Math.exp(-((i - mid) ** 2) / (2 * sigma * sigma));
  for (let i = 0; i < ksize; i++) k[i]! /= sum;
  return k;
}

/** OpenCV's default border (BORDER_REFLECT_101): …, 2, 1 | 0, 1, 2, … | n−2, n−3, … */
const reflect101 = (i: number, n: number): number => {
  if (n === 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
};

/**
 * Separable Gaussian blur per channel with OpenCV's kernel size rule for `ksize = (0, 0)`:
 * round(σ·3·2 + 1) | 1 for 8-bit images (σ 3 → 19), round(σ·4·2 + 1) | 1 for float ones (σ 6 → 49).
 * `uint8` rounds the result to 8-bit levels as OpenCV does for 8-bit input (it uses fixed point
 * internally; a level may differ by one).
 */
export function gaussianBlur(img: Planar, sigma: number, uint8: boolean): Planar {
  const ksize = Math.round(sigma * (uint8 ? 3 : 4) * 2 + 1) | 1;
  const k = gaussianKernel(ksize, sigma);
  const r = (ksize - 1) / 2;
  const { channels, height: H, width: W } = img;
  const tmp = new Float64Array(H * W);
  const out = planar(channels, H, W);
  for (let c = 0; c < channels; c++) {
    const base = c * H * W;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        let acc = 0;
        for (let j = 0; j < ksize; j++) acc += k[j]! * img.data[base + y * W + reflect101(x + j - r, W)]!;
        tmp[y * W + x] = acc;
      }
    }
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        let acc = 0;
        for (let j = 0; j < ksize; j++) acc += k[j]! * tmp[reflect101(y + j - r, H) * W + x]!;
        out.data[base + y * W + x] = uint8 ? Math.min(255, Math.max(0, Math.round(acc))) : acc;
      }
    }
  }
  return out;
}

/** The extractor's S×S input in 8-bit levels: PIL's antialiased bicubic stretch, rounded. */
export function extractorCanvas(sketch: Planar, size: number): Planar {
  const rgb = sketch.channels >= 3 ? sketch : toRgb(sketch);
  return toUint8Levels(resizeBicubicAA(rgb, size, size, { alignCorners: false }));
}

/** The graph feed of `extractor` from its S×S 8-bit canvas (table above). */
export function extractorInput(extractor: LineExtractor, u8: Planar): Tensor {
  const { height: H, width: W } = u8;
  const n = H * W;
  if (extractor === 'lineart_keras') {
    const blurred = gaussianBlur(u8, 3, true);
    const data = new Float32Array(3 * n);
    let max = -Infinity;
    for (let i = 0; i < 3 * n; i++) {
      data[i] = (u8.data[i]! - blurred.data[i]!) / 127.5;
      max = Math.max(max, data[i]!);
    }
    // The app divides by the global maximum; a flat image (max 0) would give NaN there — keep zeros.
    if (max > 0) for (let i = 0; i < data.length; i++) data[i]! /= max;
    return { data, dims: [3, 1, H, W] };
  }
  if (extractor === 'lineart') {
    const data = new Float32Array(3 * n);
    for (let i = 0; i < 3 * n; i++) data[i] = u8.data[i]! / 127.5 - 1;
    return { data, dims: [1, 3, H, W] };
  }
  if (extractor === 'lineart_denoise') return { data: Float32Array.from(u8.data.subarray(0, n)), dims: [1, 1, H, W] };
  return { data: Float32Array.from(u8.data), dims: [1, 3, H, W] };
}

/** One-channel model-sketch lines (white on black) from the graph's `lines` output. */
export function extractorLines(extractor: LineExtractor, lines: Tensor): Planar {
  const H = lines.dims[2]!;
  const W = lines.dims[3]!;
  const n = H * W;
  const out = planar(1, H, W);
  if (extractor === 'lineart_keras') {
    const entries = lines.dims[0]!;
    for (let i = 0; i < n; i++) {
      let p = -Infinity;
      for (let b = 0; b < entries; b++) p = Math.max(p, lines.data[b * n + i]!);
      out.data[i] = ((p < 0.1 ? 0 : p) - 0.5) * 2;
    }
  } else if (extractor === 'lineart_denoise') {
    for (let i = 0; i < n; i++) out.data[i] = -(Math.min(255, Math.max(0, lines.data[i]!)) / 127.5 - 1);
  } else {
    for (let i = 0; i < n; i++) out.data[i] = -lines.data[i]!;
  }
  return out;
}

/** Repeats a one-channel image into three channels. */
export function toRgb(one: Planar): Planar {
  const n = one.height * one.width;
  const rgb = planar(3, one.height, one.width);
  for (let c = 0; c < 3; c++) rgb.data.set(one.data.subarray(0, n), c * n);
  return rgb;
}

/**
 * `invert-webui` (contract G10, the web UI's "lineart standard"): on the 8-bit drawing at its own
 * size, intensity = min over RGB of (blur_σ6(img) − img) in float, clipped at 0, divided by
 * max(16, median of the values above 8), × 127, clipped to 0–255 and truncated to 8 bits,
 * replicated to 3 channels and normalised to [−1, 1] (lines bright).
 */
export function invertWebui(sketch: Planar): Planar {
  const u8 = toUint8Levels(sketch);
  const rgb = u8.channels >= 3 ? u8 : toRgb(u8);
  const blurred = gaussianBlur(rgb, 6, false);
  const n = rgb.height * rgb.width;
  const intensity = new Float64Array(n);
  const above: number[] = [];
  for (let i = 0; i < n; i++) {
    let m = Infinity;
    for (let c = 0; c < 3; c++) m = Math.min(m, blurred.data[c * n + i]! - rgb.data[c * n + i]!);
    const v = Math.min(255, Math.max(0, m));
    intensity[i] = v;
    if (v > 8) above.push(v);
  }
  above.sort((a, b) => a - b);
  const mid = above.length >> 1;
  const median = above.length === 0 ? NaN : above.length % 2 ? above[mid]! : (above[mid - 1]! + above[mid]!) / 2;
  const divisor = Number.isNaN(median) ? 16 : Math.max(16, median);
  const out = planar(3, rgb.height, rgb.width);
  for (let i = 0; i < n; i++) {
    const level = Math.trunc(Math.min(255, Math.max(0, (intensity[i]! / divisor) * 127)));
    const v = level / 127.5 - 1;
    for (let c = 0; c < 3; c++) out.data[c * n + i] = v;
  }
  return out;
}
