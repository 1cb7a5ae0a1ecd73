/**
 * Binary rasters (Uint8Array of 0/1, row-major) and the grid the colour scores work on: a frame of
 * W×H pixels is read as ⌈W/s⌉×⌈H/s⌉ cells of s×s pixels (edge cells keep what is left).
 */
import type { Planar } from '@celfarm/pipeline';
import { labImage, labKernel, type LabImage } from './lab.ts';

/** Which way a sketch is drawn: ink darker than the paper, or the model's white lines on black. */
export type SketchPolarity = 'dark-lines' | 'light-lines';

/**
 * The cell average of a pipeline image ([−1,1], 3 or 1 channels), in CIELAB: each cell's sRGB
 * values are averaged (as image downscalers do), then converted. `cell` 1 is a plain conversion.
 */
export function labGrid(img: Planar, cell: number): LabImage {
  checkCell(cell);
  const { channels: C, height: H, width: W } = img;
  if (C !== 3 && C !== 1) throw new RangeError(`a colour image needs 1 or 3 channels, got ${C}`);
  const n = H * W;
  const gw = Math.ceil(W / cell);
  const gh = Math.ceil(H / cell);
  const out = labImage(gw, gh);
  const d = img.data;
  const oG = C === 3 ? n : 0;
  const oB = C === 3 ? 2 * n : 0;
  if (cell === 1) {
    labKernel(d, 0, oG, oB, n, 0.5, 0.5, out, 0);
    return out;
  }
  const col = cellOfColumn(W, cell);
  // Cell sums of one grid row, R then G then B (float64: float32 stores cost twice as much here).
  const acc = new Float64Array(3 * gw);
  const mean = new Float32Array(3 * gw);
  const inv = new Float64Array(gw);
  for (let gy = 0; gy < gh; gy++) {
    acc.fill(0);
    const y0 = gy * cell;
    const y1 = Math.min(H, y0 + cell);
    for (let y = y0; y < y1; y++) {
      const row = y * W;
      for (let x = 0; x < W; x++) {
        const j = col[x];
        acc[j] += d[row + x];
        acc[gw + j] += d[oG + row + x];
        acc[2 * gw + j] += d[oB + row + x];
      }
    }
    for (let gx = 0; gx < gw; gx++) inv[gx] = 1 / ((y1 - y0) * (Math.min(W, (gx + 1) * cell) - gx * cell));
    for (let gx = 0; gx < gw; gx++) {
      mean[gx] = acc[gx] * inv[gx];
      mean[gw + gx] = acc[gw + gx] * inv[gx];
      mean[2 * gw + gx] = acc[2 * gw + gx] * inv[gx];
    }
    labKernel(mean, 0, gw, 2 * gw, gw, 0.5, 0.5, out, gy * gw);
  }
  return out;
}

/** Mean over channels, mapped from [−1,1] to [0,1]: the grey value of a sketch pixel. */
function greyAt(d: Float32Array, C: number, n: number, i: number): number {
  let s = 0;
  for (let c = 0; c < C; c++) s += d[c * n + i];
  return (s / C + 1) * 0.5;
}

/**
 * The paper colour decides: a sketch whose mean grey value is ≥ 0.5 is mostly light paper, so its
 * lines are dark (an ordinary drawing); otherwise it is the model convention, white lines on black.
 * The mean is taken over every 7th pixel, which the paper dominates as much as the whole.
 */
export function detectPolarity(sketch: Planar): SketchPolarity {
  const { channels: C, height: H, width: W } = sketch;
  const n = H * W;
  const step = n >= 4096 ? 7 : 1;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < n; i += step) {
    sum += greyAt(sketch.data, C, n, i);
    count++;
  }
  return count === 0 || sum / count >= 0.5 ? 'dark-lines' : 'light-lines';
}

/**
 * Line pixels of a sketch ([−1,1], any channel count; the channel mean is used): grey < `threshold`
 * for dark lines, grey > 1 − `threshold` for light lines.
 */
export function lineMap(sketch: Planar, polarity: SketchPolarity, threshold: number): Uint8Array {
  const { channels: C, height: H, width: W } = sketch;
  const n = H * W;
  const out = new Uint8Array(n);
  const d = sketch.data;
  // On the sum of the channels in [−1,1]: grey < t ⟺ sum < C·(2t − 1); grey > 1 − t ⟺ sum > C·(1 − 2t).
  const dark = polarity === 'dark-lines';
  const limit = dark ? C * (2 * threshold - 1) : C * (1 - 2 * threshold);
  if (C === 1) {
    for (let i = 0; i < n; i++) out[i] = (dark ? d[i] < limit : d[i] > limit) ? 1 : 0;
  } else if (C === 3) {
    for (let i = 0; i < n; i++) {
      const s = d[i] + d[n + i] + d[2 * n + i];
      out[i] = (dark ? s < limit : s > limit) ? 1 : 0;
    }
  } else {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += d[c * n + i];
      out[i] = (dark ? s < limit : s > limit) ? 1 : 0;
    }
  }
  return out;
}

/** A cell is set when any of its pixels is set. */
export function poolAny(bits: Uint8Array, W: number, H: number, cell: number): Uint8Array {
  checkCell(cell);
  if (cell === 1) return bits.slice();
  const gw = Math.ceil(W / cell);
  const out = new Uint8Array(gw * Math.ceil(H / cell));
  const col = cellOfColumn(W, cell);
  for (let y = 0; y < H; y++) {
    const row = y * W;
    const g = ((y / cell) | 0) * gw;
    for (let x = 0; x < W; x++) if (bits[row + x]) out[g + col[x]] = 1;
  }
  return out;
}

/**
 * Square dilation: a pixel is set when any pixel within Chebyshev distance `radius` is. Separable
 * with running counts, so O(W·H) whatever the radius.
 */
export function dilate(bits: Uint8Array, W: number, H: number, radius: number): Uint8Array {
  if (!Number.isInteger(radius) || radius < 0) throw new RangeError(`radius must be a non-negative integer, got ${radius}`);
  if (radius === 0) return bits.slice();
  const tmp = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) {
    const o = y * W;
    let count = 0;
    for (let x = 0; x < Math.min(W, radius); x++) count += bits[o + x];
    for (let x = 0; x < W; x++) {
      if (x + radius < W) count += bits[o + x + radius];
      if (x - radius - 1 >= 0) count -= bits[o + x - radius - 1];
      tmp[o + x] = count > 0 ? 1 : 0;
    }
  }
  const out = new Uint8Array(W * H);
  for (let x = 0; x < W; x++) {
    let count = 0;
    for (let y = 0; y < Math.min(H, radius); y++) count += tmp[y * W + x];
    for (let y = 0; y < H; y++) {
      if (y + radius < H) count += tmp[(y + radius) * W + x];
      if (y - radius - 1 >= 0) count -= tmp[(y - radius - 1) * W + x];
      out[y * W + x] = count > 0 ? 1 : 0;
    }
  }
  return out;
}

/** Regions of a line raster: 4-connected components of the cells that are not line. */
export interface Regions {
  /** Per cell: 0 on a line, else the region id (1-based). */
  labels: Int32Array;
  /** Cells per region, indexed by id (index 0 unused). */
  sizes: Int32Array;
}

/** Labels the paper between the lines (iterative fill over an Int32Array queue, O(W·H)). */
export function regions(lines: Uint8Array, W: number, H: number): Regions {
  const n = W * H;
  const labels = new Int32Array(n);
  const queue = new Int32Array(n);
  const sizes: number[] = [0];
  for (let start = 0; start < n; start++) {
    if (lines[start] || labels[start]) continue;
    const id = sizes.length;
    let head = 0;
    let tail = 0;
    labels[start] = id;
    queue[tail++] = start;
    while (head < tail) {
      const i = queue[head++];
      const x = i % W;
      if (x > 0 && !lines[i - 1] && !labels[i - 1]) {
        labels[i - 1] = id;
        queue[tail++] = i - 1;
      }
      if (x < W - 1 && !lines[i + 1] && !labels[i + 1]) {
        labels[i + 1] = id;
        queue[tail++] = i + 1;
      }
      if (i >= W && !lines[i - W] && !labels[i - W]) {
        labels[i - W] = id;
        queue[tail++] = i - W;
      }
      if (i < n - W && !lines[i + W] && !labels[i + W]) {
        labels[i + W] = id;
        queue[tail++] = i + W;
      }
    }
    sizes.push(tail);
  }
  return { labels, sizes: Int32Array.from(sizes) };
}

/**
 * A [0,1] mask of any size covering the same frame, read at the centre of every cell of a
 * `cell`-sized grid over W×H (nearest neighbour): 1 where the value is ≥ `threshold`. The sketch
 * mask the pipeline keeps at latent size works as well as a full-size one.
 */
export function maskGrid(mask: Planar, W: number, H: number, cell: number, threshold = 0.5): Uint8Array {
  checkCell(cell);
  const { height: mh, width: mw } = mask;
  const gw = Math.ceil(W / cell);
  const gh = Math.ceil(H / cell);
  const mx = new Int32Array(gw);
  for (let gx = 0; gx < gw; gx++) mx[gx] = Math.min(mw - 1, Math.floor((Math.min(W, (gx + 0.5) * cell) * mw) / W));
  const out = new Uint8Array(gw * gh);
  for (let gy = 0; gy < gh; gy++) {
    const my = Math.min(mh - 1, Math.floor((Math.min(H, (gy + 0.5) * cell) * mh) / H));
    for (let gx = 0; gx < gw; gx++) out[gy * gw + gx] = mask.data[my * mw + mx[gx]] >= threshold ? 1 : 0;
  }
  return out;
}

function cellOfColumn(W: number, cell: number): Int32Array {
  const col = new Int32Array(W);
  for (let x = 0; x < W; x++) col[x] = (x / cell) | 0;
  return col;
}

function checkCell(cell: number): void {
  if (!Number.isInteger(cell) || cell < 1) throw new RangeError(`cell must be a positive integer, got ${cell}`);
}
