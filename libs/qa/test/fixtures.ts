/** Constructed images for the QA tests: colours given in Lab, sketches given as line predicates. */
import type { Planar } from '@celfarm/pipeline';
import { seededRandom as seededRandomOf } from '@celfarm/model-kit/bench-pack';
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

/** sRGB colours (0–1) of the parts of {@link characterFrame}'s character, back to front. */
export const CHARACTER_COLOURS: ReadonlyArray<readonly [number, number, number]> = [
  [0.85, 0.2, 0.25], // coat
  [0.98, 0.86, 0.76], // face
  [0.2, 0.25, 0.6], // hair
  [0.95, 0.8, 0.3], // sleeve
];
const PARTS = [
  [0.5, 0.62, 0.22, 0.3],
  [0.5, 0.3, 0.14, 0.16],
  [0.5, 0.2, 0.17, 0.09],
  [0.32, 0.6, 0.05, 0.18],
] as const;

/**
 * A shaded, grainy character of ellipses with ink outlines on a gradient backdrop (the QA bench's
 * scene, smaller): output, sketch (black lines on white, `lineWidth` px) and character mask, the
 * character moved `dx` px, grain ±0.02 per channel from `seed`. `colours` replaces the parts'
 * colours; `ink` is how much ink the output's lines keep (1: ink; 0: painted with the colour under).
 */
export function characterFrame(
  S: number,
  dx: number,
  seed: number,
  opts: { colours?: ReadonlyArray<readonly [number, number, number]>; ink?: number; lineWidth?: number } = {},
): { output: Planar; sketch: Planar; characterMask: Planar } {
  const rnd = seededRandomOf(seed);
  const ink = opts.ink ?? 1;
  const width = opts.lineWidth ?? 2;
  const n = S * S;
  const output = new Float32Array(3 * n);
  const sketch = new Float32Array(n).fill(1);
  const mask = new Float32Array(n);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const i = y * S + x;
      let rgb = [0.75 - 0.2 * (y / S), 0.82 - 0.1 * (y / S), 0.9];
      let line = false;
      PARTS.forEach(([cx, cy, rx, ry], k) => {
        const base = opts.colours?.[k] ?? CHARACTER_COLOURS[k]!;
        const u = (x - dx - cx * S) / (rx * S);
        const v = (y - cy * S) / (ry * S);
        const r = Math.sqrt(u * u + v * v);
        if (r <= 1) {
          const shade = 1 - 0.125 * Math.max(0, u + v);
          rgb = [base[0] * shade, base[1] * shade, base[2] * shade];
          line = false;
          mask[i] = 1;
        }
        if (Math.abs((r - 1) * Math.min(rx, ry) * S) < width / 2 + 0.5) line = true;
      });
      if (line) rgb = [0.08 * ink + rgb[0]! * (1 - ink), 0.07 * ink + rgb[1]! * (1 - ink), 0.1 * ink + rgb[2]! * (1 - ink)];
      for (let c = 0; c < 3; c++) output[c * n + i] = Math.min(1, Math.max(0, rgb[c]! + (rnd() - 0.5) * 0.04)) * 2 - 1;
      if (line) sketch[i] = -1;
    }
  }
  return {
    output: { data: output, channels: 3, height: S, width: S },
    sketch: { data: sketch, channels: 1, height: S, width: S },
    characterMask: { data: mask, channels: 1, height: S, width: S },
  };
}
