/**
 * Generated frames for the QA bench: a shaded, noisy "character" of filled ellipses with ink
 * outlines on a gradient backdrop. Colours are sRGB in [0,1]; images are the pipeline's planar
 * [−1,1].
 */
import { seededRandom as prng } from '@celfarm/model-kit/bench-pack';
import type { Planar } from '@celfarm/pipeline';
import type { FrameImages } from '@celfarm/qa';

export type Rgb = [number, number, number];
interface Ellipse {
  cx: number;
  cy: number;
  rx: number;
  ry: number;
  rgb: Rgb;
}

/** A character of ellipses (unit coordinates), drawn back to front. */
export const CHARACTER: readonly Ellipse[] = [
  { cx: 0.5, cy: 0.62, rx: 0.22, ry: 0.3, rgb: [0.85, 0.2, 0.25] }, // coat
  { cx: 0.5, cy: 0.3, rx: 0.14, ry: 0.16, rgb: [0.98, 0.86, 0.76] }, // face
  { cx: 0.5, cy: 0.2, rx: 0.17, ry: 0.09, rgb: [0.2, 0.25, 0.6] }, // hair
  { cx: 0.45, cy: 0.3, rx: 0.02, ry: 0.03, rgb: [0.1, 0.5, 0.4] }, // eyes
  { cx: 0.55, cy: 0.3, rx: 0.02, ry: 0.03, rgb: [0.1, 0.5, 0.4] },
  { cx: 0.32, cy: 0.6, rx: 0.05, ry: 0.18, rgb: [0.95, 0.8, 0.3] }, // sleeves
  { cx: 0.68, cy: 0.6, rx: 0.05, ry: 0.18, rgb: [0.95, 0.8, 0.3] },
];

/**
 * Output (shaded, noisy) and sketch (ink outlines on white) of the character shifted by dx pixels;
 * `colours` replaces the colours of CHARACTER's parts, in order; `ink` is how much of the ink the
 * output's lines keep (1: ink, 0: painted over with the colour beneath).
 */
export function frame(S: number, dx: number, seed: number, colours?: readonly Rgb[], ink = 1): FrameImages & { characterMask: Planar } {
  const rnd = prng(seed);
  const n = S * S;
  const output = new Float32Array(3 * n);
  const sketch = new Float32Array(n).fill(1);
  const mask = new Float32Array(n);
  const width = Math.max(1, Math.round(S / 256)); // line width: 2 px at 512, 3 px at 768
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const i = y * S + x;
      let rgb: Rgb = [0.75 - 0.2 * (y / S), 0.82 - 0.1 * (y / S), 0.9]; // backdrop gradient
      let line = false;
      for (const [k, e] of CHARACTER.entries()) {
        const base = colours?.[k] ?? e.rgb;
        const u = (x - dx - e.cx * S) / (e.rx * S);
        const v = (y - e.cy * S) / (e.ry * S);
        const r = Math.sqrt(u * u + v * v);
        const edge = (r - 1) * Math.min(e.rx, e.ry) * S; // ≈ pixels from the outline
        if (r <= 1) {
          const shade = 1 - 0.25 * Math.max(0, u + v) * 0.5; // light from the top left
          rgb = [base[0] * shade, base[1] * shade, base[2] * shade];
          line = false;
          mask[i] = 1;
        }
        if (Math.abs(edge) < width / 2 + 0.5) line = true;
      }
      if (line) rgb = [0.08 * ink + rgb[0] * (1 - ink), 0.07 * ink + rgb[1] * (1 - ink), 0.1 * ink + rgb[2] * (1 - ink)];
      for (let c = 0; c < 3; c++) {
        const v = rgb[c]! + (rnd() - 0.5) * 0.04; // diffusion-like grain
        output[c * n + i] = Math.min(1, Math.max(0, v)) * 2 - 1;
      }
      if (line) sketch[i] = -1;
    }
  }
  return {
    output: { data: output, channels: 3, height: S, width: S },
    sketch: { data: sketch, channels: 1, height: S, width: S },
    characterMask: { data: mask, channels: 1, height: S, width: S },
  };
}
