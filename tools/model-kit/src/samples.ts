/**
 * Generated sample inputs for tests and the demo: line-art frames (black outlines on white
 * paper) and colour references with a saturated character on a neutral background. Planar CHW
 * float32 in [−1, 1], the pipeline's image convention.
 */
import type { Planar } from '@celfarm/pipeline/image/tensor';

export type Rgb = [number, number, number];

/** Colours in [−1, 1] per channel. */
export const COLOURS = {
  red: [1, -1, -1] as Rgb,
  blue: [-1, -1, 1] as Rgb,
  green: [-1, 1, -1] as Rgb,
  grey: [0.2, 0.2, 0.2] as Rgb,
  white: [1, 1, 1] as Rgb,
};

function canvas(width: number, height: number, rgb: Rgb): Planar {
  const data = new Float32Array(3 * width * height);
  for (let c = 0; c < 3; c++) data.fill(rgb[c]!, c * width * height, (c + 1) * width * height);
  return { data, channels: 3, height, width };
}

function paint(img: Planar, inside: (x: number, y: number) => boolean, rgb: Rgb) {
  const { width: W, height: H } = img;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      if (!inside(x + 0.5, y + 0.5)) continue;
      for (let c = 0; c < 3; c++) img.data[(c * H + y) * W + x] = rgb[c]!;
    }
  }
}

export interface Circle {
  cx: number;
  cy: number;
  r: number;
}

/**
 * Frame `index` of `count`: a circle outline of stroke `stroke` px moving left to right on
 * white paper. Returns the image and the circle (for tests that probe inside/outside pixels).
 */
export function sketchFrame(
  width: number,
  height: number,
  index = 0,
  count = 1,
  stroke = 3,
): { image: Planar; circle: Circle } {
  const img = canvas(width, height, COLOURS.white);
  const r = Math.min(width, height) * 0.28;
  const travel = count > 1 ? index / (count - 1) : 0.5;
  const cx = width * (0.38 + 0.24 * travel);
  const cy = height * 0.5;
  paint(img, (x, y) => Math.abs(Math.hypot(x - cx, y - cy) - r) <= stroke / 2, [-1, -1, -1]);
  return { image: img, circle: { cx, cy, r } };
}

/** A filled `character` disc on a `backdrop` colour: the reference's fg/bg are known colours. */
export function referenceImage(width: number, height: number, character: Rgb = COLOURS.red, backdrop: Rgb = COLOURS.grey): Planar {
  const img = canvas(width, height, backdrop);
  const r = Math.min(width, height) * 0.3;
  paint(img, (x, y) => Math.hypot(x - width / 2, y - height / 2) <= r, character);
  return img;
}

/** A uniform image (e.g. a background plate). */
export const uniformImage = (width: number, height: number, rgb: Rgb): Planar => canvas(width, height, rgb);

/** Left half `left`, right half `right`: the analytic CLIP grid sees pure cells of both colours. */
export function halfImage(width: number, height: number, left: Rgb, right: Rgb): Planar {
  const img = canvas(width, height, right);
  paint(img, (x) => x < width / 2, left);
  return img;
}
