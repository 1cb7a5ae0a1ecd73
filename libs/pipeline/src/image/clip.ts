/**
 * Pixel preparation for the image encoders: CLIP ViT-H/14 (contract §G1) and the RMBG-2.0
 * reference mask (contract §G9).
 */
import { resizeBicubicAA, resizeBilinearAA } from './resample.ts';
import type { Planar } from './tensor.ts';

/** OpenCLIP image normalisation (contract §G1). */
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;
/** ImageNet normalisation used by RMBG-2.0 (contract §G9). */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

const check3 = (p: Planar): void => {
  if (p.channels !== 3) throw new RangeError(`expected 3 channels, got ${p.channels}`);
};

/** In place: x ← ((x+1)/2 − mean)/std when `to01`, else (x − mean)/std. */
function normalise(p: Planar, mean: readonly number[], std: readonly number[], to01: boolean): void {
  const n = p.height * p.width;
  for (let c = 0; c < 3; c++) {
    const m = mean[c];
    const s = std[c];
    for (let i = c * n; i < (c + 1) * n; i++) p.data[i] = ((to01 ? (p.data[i] + 1) / 2 : p.data[i]) - m) / s;
  }
}

/**
 * CLIP input `pixels` (contract §G1): the [−1,1] image at its native size is *stretched* (no
 * crop, no letterbox) to size×size with antialiased bicubic, align_corners True, then mapped to
 * [0,1] by (x+1)/2 and normalised with the OpenCLIP mean/std.
 */
export function clipPixels(img: Planar, size = 224): Planar {
  check3(img);
  const out = resizeBicubicAA(img, size, size, { alignCorners: true });
  normalise(out, CLIP_MEAN, CLIP_STD, true);
  return out;
}

/**
 * RMBG-2.0 input (contract §G9): (x+1)/2, resized to size×size with antialiased bilinear
 * (torchvision tensor resize), ImageNet normalisation — in that order, as the app does.
 */
export function imagenetPixels(img: Planar, size = 1024): Planar {
  check3(img);
  const unit: Planar = { ...img, data: new Float32Array(img.data.length) };
  for (let i = 0; i < img.data.length; i++) unit.data[i] = (img.data[i] + 1) / 2;
  const out = resizeBilinearAA(unit, size, size);
  normalise(out, IMAGENET_MEAN, IMAGENET_STD, false);
  return out;
}
