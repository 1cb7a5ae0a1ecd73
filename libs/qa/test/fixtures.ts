/** Constructed images for the QA tests: colours given in Lab, sketches given as line predicates. */
import type { Planar } from '@celfarm/pipeline';
import { labToSrgb, srgbToLab } from '../src/lab.ts';

export type Lab = [number, number, number];

/** A planar [−1,1] RGB image whose pixel (x, y) has the Lab colour `at(x, y)`; throws outside the sRGB gamut. */
export function labPicture(W: number, H: number, at: (x: number, y: number) => Lab): Planar {
  const n = W * H;
  const data = new Float32Array(3 * n);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const lab = at(x, y);
      const rgb = labToSrgb(...lab);
      const back = srgbToLab(...rgb);
      if (Math.abs(back[0] - lab[0]) + Math.abs(back[1] - lab[1]) + Math.abs(back[2] - lab[2]) > 1e-4) {
        throw new RangeError(`Lab ${lab.join(', ')} is outside the sRGB gamut`);
      }
      for (let c = 0; c < 3; c++) data[c * n + y * W + x] = rgb[c] * 2 - 1;
    }
  }
  return { data, channels: 3, height: H, width: W };
}

/** A sketch: `isLine(x, y)` pixels black on white paper, or white on black with `light`. */
export function sketchPicture(W: number, H: number, isLine: (x: number, y: number) => boolean, light = false): Planar {
  const n = W * H;
  const data = new Float32Array(3 * n);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const v = isLine(x, y) !== light ? -1 : 1;
      for (let c = 0; c < 3; c++) data[c * n + y * W + x] = v;
    }
  }
  return { data, channels: 3, height: H, width: W };
}

/** A 1-channel [0,1] mask. */
export function maskPicture(W: number, H: number, inside: (x: number, y: number) => boolean): Planar {
  const data = new Float32Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data[y * W + x] = inside(x, y) ? 1 : 0;
  return { data, channels: 1, height: H, width: W };
}

/** The outline of the axis-aligned square [x0, x0+size)×[y0, y0+size), `width` pixels thick. */
export const squareOutline =
  (x0: number, y0: number, size: number, width = 2) =>
  (x: number, y: number): boolean =>
    x >= x0 && x < x0 + size && y >= y0 && y < y0 + size && (x < x0 + width || x >= x0 + size - width || y < y0 + width || y >= y0 + size - width);

/** Inside the square's outline (not on it). */
export const squareInside =
  (x0: number, y0: number, size: number, width = 2) =>
  (x: number, y: number): boolean =>
    x >= x0 + width && x < x0 + size - width && y >= y0 + width && y < y0 + size - width;

/** Lab of an sRGB colour given in 0–255. */
export const lab8 = (r: number, g: number, b: number): Lab => srgbToLab(r / 255, g / 255, b / 255);

/** A Lab colour rotated in the a*b* plane by `deg` degrees (a hue shift at constant L* and C*ab). */
export function rotateHue([L, a, b]: Lab, deg: number): Lab {
  const t = (deg * Math.PI) / 180;
  return [L, a * Math.cos(t) - b * Math.sin(t), a * Math.sin(t) + b * Math.cos(t)];
}

/** Deterministic PRNG (mulberry32), the project's one. */
export { seededRandom as prng } from '@celfarm/model-kit/bench-pack';
