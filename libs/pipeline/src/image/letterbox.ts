/**
 * Sketch letterboxing (contract §2.1 step 1): the sketch keeps its aspect ratio inside the
 * generation size (H, W), unlike references, which are stretched (§9 item 8).
 */
import { resizeBicubicAA } from './resample.ts';
import { planar } from './tensor.ts';
import type { Planar } from './tensor.ts';

/** Where the fitted image sits on the canvas, in canvas pixels; kept for "Crop result". */
export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Fits `src` (native size oh×ow) into an H×W canvas as the app does (contract §2.1 step 1):
 * r = min(H/oh, W/ow); size (trunc(oh·r), trunc(ow·r)), at least 1 (float64 arithmetic, as
 * Python's `int(oh*r)`); antialiased bicubic, align_corners False, values not clamped; centred on
 * a canvas filled with −1 (the model-sketch "paper"), left = floor((W−w')/2), top = floor((H−h')/2).
 * `native` is the size the fit is computed from when `src` was already resized (the line
 * extractors' S×S output is fitted with the original sketch's proportions, resized once).
 */
export function fitLetterbox(
  src: Planar,
  H: number,
  W: number,
  native: { height: number; width: number } = src,
): { image: Planar; box: Box } {
  if (!Number.isInteger(H) || !Number.isInteger(W) || H < 1 || W < 1) {
    throw new RangeError(`canvas size must be positive integers, got ${H}×${W}`);
  }
  const oh = native.height;
  const ow = native.width;
  const r = Math.min(H / oh, W / ow);
  const h = Math.min(H, Math.max(1, Math.trunc(oh * r)));
  const w = Math.min(W, Math.max(1, Math.trunc(ow * r)));
  const resized = resizeBicubicAA(src, h, w, { alignCorners: false });
  const left = Math.floor((W - w) / 2);
  const top = Math.floor((H - h) / 2);
  const image = planar(src.channels, H, W, -1);
  for (let c = 0; c < src.channels; c++) {
    for (let y = 0; y < h; y++) {
      const s = (c * h + y) * w;
      image.data.set(resized.data.subarray(s, s + w), (c * H + top + y) * W + left);
    }
  }
  return { image, box: { left, top, width: w, height: h } };
}

/** Copies the `box` region out of `src` (all channels); used to undo the letterbox ("Crop result"). */
export function crop(src: Planar, box: Box): Planar {
  const { left, top, width, height } = box;
  const ok = [left, top, width, height].every(Number.isInteger) && left >= 0 && top >= 0 && width >= 1 &&
    height >= 1 && left + width <= src.width && top + height <= src.height;
  if (!ok) throw new RangeError(`crop box ${JSON.stringify(box)} is outside the ${src.height}×${src.width} image`);
  const out = planar(src.channels, height, width);
  for (let c = 0; c < src.channels; c++) {
    for (let y = 0; y < height; y++) {
      const s = (c * src.height + top + y) * src.width + left;
      out.data.set(src.data.subarray(s, s + width), (c * height + y) * width);
    }
  }
  return out;
}
