/**
 * Binary rasters (Uint8Array of 0/1, row-major; or bit rasters, 32 cells an Int32 word, rows
 * padded to whole words) and the grid the colour scores work on: a frame of W×H pixels is read as
 * ⌈W/s⌉×⌈H/s⌉ cells of s×s pixels (edge cells keep what is left).
 *
 * The kernels run once per frame over hundreds of thousands of pixels, so each hot loop sits in a
 * function of its own with nothing after it but a return: V8 compiles a loop that runs long while
 * the function first runs (on-stack replacement), before the code after the loop has run, and
 * code without type feedback there made every later call leave the compiled code again.
 */
import type { Planar } from '@celfarm/pipeline';
import { labImage, labKernel, lightnessOfMean, type LabImage } from './lab.ts';

/** Which way a sketch is drawn: ink darker than the paper, or the model's white lines on black. */
export type SketchPolarity = 'dark-lines' | 'light-lines';

/**
 * The cell average of a pipeline image ([−1,1], 3 or 1 channels), in CIELAB: each cell's sRGB
 * values are averaged (as image downscalers do), then converted. `cell` 1 is a plain conversion.
 *
 * With `stride` s > 1 only every s-th cell in each direction is computed — the cells whose grid
 * coordinates are both multiples of s — into a ⌈gw/s⌉×⌈gh/s⌉ image; each of them is the full
 * average of its cell, exactly as with stride 1 (only the pixels of those cells are read).
 */
export function labGrid(img: Planar, cell: number, stride = 1): LabImage {
  checkCell(cell);
  checkStride(stride);
  const { channels: C, height: H, width: W } = img;
  if (C !== 3 && C !== 1) throw new RangeError(`a colour image needs 1 or 3 channels, got ${C}`);
  const n = H * W;
  const gw = Math.ceil(W / cell);
  const gh = Math.ceil(H / cell);
  const sw = Math.ceil(gw / stride);
  const sh = Math.ceil(gh / stride);
  const out = labImage(sw, sh);
  const d = img.data;
  const oG = C === 3 ? n : 0;
  const oB = C === 3 ? 2 * n : 0;
  if (cell === 1 && stride === 1) {
    labKernel(d, 0, oG, oB, n, 0.5, 0.5, out, 0);
    return out;
  }
  // Cell means of one row of computed cells, R then G then B, converted together.
  const mean = new Float32Array(3 * sw);
  const sums = new Float64Array(3);
  for (let sy = 0; sy < sh; sy++) {
    cellMeans(d, W, H, oG, oB, cell, stride, sy, sw, mean, sums);
    labKernel(mean, 0, sw, 2 * sw, sw, 0.5, 0.5, out, sy * sw);
  }
  return out;
}

/**
 * The means of the computed cells of row `sy` (cells every `stride` cells), R then G then B, as
 * float32.
 */
function cellMeans(d: Float32Array, W: number, H: number, oG: number, oB: number, cell: number, stride: number, sy: number, sw: number, mean: Float32Array, sums: Float64Array): void {
  const step = stride * cell;
  const y0 = sy * step;
  const y1 = Math.min(H, y0 + cell);
  for (let sx = 0; sx < sw; sx++) {
    const x0 = sx * step;
    const x1 = Math.min(W, x0 + cell);
    cellSums(d, W, oG, oB, x0, x1, y0, y1, sums);
    const inv = 1 / ((y1 - y0) * (x1 - x0));
    mean[sx] = sums[0] * inv;
    mean[sw + sx] = sums[1] * inv;
    mean[2 * sw + sx] = sums[2] * inv;
  }
}

/**
 * The sums of R, G and B over the pixels [x0, x1) × [y0, y1), into out[0..2]: in float64, row by
 * row, left to right, so that a cell's mean is the same whichever cells are computed with it.
 */
function cellSums(d: Float32Array, W: number, oG: number, oB: number, x0: number, x1: number, y0: number, y1: number, out: Float64Array): void {
  let r = 0;
  let g = 0;
  let b = 0;
  if (x1 - x0 === 4 && y1 - y0 === 4) {
    // The default cell, written out (a loop of 4 costs as much again).
    for (let k = 0, i = y0 * W + x0; k < 4; k++, i += W) {
      r += d[i];
      r += d[i + 1];
      r += d[i + 2];
      r += d[i + 3];
      g += d[oG + i];
      g += d[oG + i + 1];
      g += d[oG + i + 2];
      g += d[oG + i + 3];
      b += d[oB + i];
      b += d[oB + i + 1];
      b += d[oB + i + 2];
      b += d[oB + i + 3];
    }
  } else {
    for (let y = y0; y < y1; y++) {
      const e = y * W + x1;
      for (let i = y * W + x0; i < e; i++) {
        r += d[i];
        g += d[oG + i];
        b += d[oB + i];
      }
    }
  }
  out[0] = r;
  out[1] = g;
  out[2] = b;
}

/**
 * L* of the cells set in `which` (a bit raster of the grid: row gy, cell gx is bit gx & 31 of word
 * gy·⌈gw/32⌉ + (gx >> 5)), into out[gy·gw + gx]: the L* of {@link labGrid}, value for value.
 */
export function cellLightness(img: Planar, cell: number, which: Int32Array, out: Float32Array): void {
  const { channels: C, height: H, width: W } = img;
  if (C !== 3 && C !== 1) throw new RangeError(`a colour image needs 1 or 3 channels, got ${C}`);
  const n = H * W;
  lightnessOfCells(img.data, W, H, C === 3 ? n : 0, C === 3 ? 2 * n : 0, cell, which, out, new Float64Array(3));
}

function lightnessOfCells(d: Float32Array, W: number, H: number, oG: number, oB: number, cell: number, which: Int32Array, out: Float32Array, sums: Float64Array): void {
  const gw = Math.ceil(W / cell);
  const gh = Math.ceil(H / cell);
  const wpr = (gw + 31) >>> 5;
  for (let gy = 0; gy < gh; gy++) {
    const y0 = gy * cell;
    const y1 = Math.min(H, y0 + cell);
    for (let j = 0; j < wpr; j++) {
      let w = which[gy * wpr + j];
      while (w !== 0) {
        const low = w & -w;
        const gx = j * 32 + 31 - Math.clz32(low);
        const x0 = gx * cell;
        const x1 = Math.min(W, x0 + cell);
        cellSums(d, W, oG, oB, x0, x1, y0, y1, sums);
        const inv = 1 / ((y1 - y0) * (x1 - x0));
        out[gy * gw + gx] = lightnessOfMean(Math.fround(sums[0] * inv), Math.fround(sums[1] * inv), Math.fround(sums[2] * inv));
        w ^= low;
      }
    }
  }
}

/** A bit raster of a byte raster's set cells (32 a word, rows padded to whole words). */
export function packBits(bits: Uint8Array, W: number, H: number): Int32Array {
  const wpr = (W + 31) >>> 5;
  const out = new Int32Array(wpr * H);
  packInto(bits, W, H, wpr, out);
  return out;
}

function packInto(bits: Uint8Array, W: number, H: number, wpr: number, out: Int32Array): void {
  for (let y = 0; y < H; y++) {
    const o = y * W;
    for (let j = 0; j < wpr; j++) {
      const x0 = j * 32;
      const x1 = Math.min(W, x0 + 32);
      let v = 0;
      for (let x = x0; x < x1; x++) v |= (bits[o + x] & 1) << (x - x0);
      out[y * wpr + j] = v;
    }
  }
}

/** {@link dilate} of a bit raster as {@link packBits} makes (rows of ⌈W/32⌉ words). */
export function dilateBits(bits: Int32Array, W: number, H: number, radius: number): Int32Array {
  const wpr = (W + 31) >>> 5;
  const rows = new Int32Array(wpr * H);
  // Horizontally in steps of at most 31 cells (dilating by a, then b, dilates by a + b).
  const last = W & 31 ? (1 << (W & 31)) - 1 : -1;
  let src = bits;
  let rest = radius;
  do {
    const k = Math.min(31, rest);
    dilateRowsBits(src, rows, wpr, H, k, last);
    src = rows;
    rest -= k;
  } while (rest > 0);
  const out = new Int32Array(wpr * H);
  dilateColumnsBits(src, out, wpr, H, radius);
  return out;
}

/** Each row dilated by k ≤ 31 bits each way (in place is fine); `last` masks the cells of the last word of a row. */
function dilateRowsBits(src: Int32Array, out: Int32Array, wpr: number, H: number, k: number, last: number): void {
  for (let y = 0; y < H; y++) {
    const o = y * wpr;
    let prev = 0;
    let cur = src[o];
    for (let j = 0; j < wpr; j++) {
      const next = j + 1 < wpr ? src[o + j + 1] : 0;
      let v = cur;
      for (let s = 1; s <= k; s++) v |= (cur << s) | (prev >>> (32 - s)) | (cur >>> s) | (next << (32 - s));
      out[o + j] = j + 1 < wpr ? v : v & last;
      prev = cur;
      cur = next;
    }
  }
}

/** Each bit set when a bit of its column within r rows is. */
function dilateColumnsBits(src: Int32Array, out: Int32Array, wpr: number, H: number, r: number): void {
  for (let y = 0; y < H; y++) {
    const y0 = Math.max(0, y - r);
    const y1 = Math.min(H - 1, y + r);
    for (let j = 0; j < wpr; j++) {
      let v = 0;
      for (let yy = y0; yy <= y1; yy++) v |= src[yy * wpr + j];
      out[y * wpr + j] = v;
    }
  }
}

/**
 * The paper colour decides: a sketch whose mean grey value is ≥ 0.5 is mostly light paper, so its
 * lines are dark (an ordinary drawing); otherwise it is the model convention, white lines on black.
 * The mean is taken over every 7th pixel of every 7th row (of every row and pixel below 4,096
 * pixels), which the paper dominates as much as the whole; reading 1 row in 7 keeps it to a
 * fraction of a pass over the sketch.
 */
export function detectPolarity(sketch: Planar): SketchPolarity {
  const { channels: C, height: H, width: W } = sketch;
  const step = H * W >= 4096 ? 7 : 1;
  const count = Math.ceil(W / step) * Math.ceil(H / step);
  return count === 0 || greySum(sketch.data, C, W, H, step) / count >= 0.5 ? 'dark-lines' : 'light-lines';
}

/** The sum of the grey values (channel mean mapped from [−1,1] to [0,1]) of every `step`-th pixel of every `step`-th row. */
function greySum(d: Float32Array, C: number, W: number, H: number, step: number): number {
  const n = W * H;
  let sum = 0;
  for (let y = 0; y < H; y += step) {
    const end = (y + 1) * W;
    for (let i = y * W; i < end; i += step) {
      if (C === 1) sum += (d[i] + 1) * 0.5;
      else if (C === 3) sum += ((d[i] + d[n + i] + d[2 * n + i]) / 3 + 1) * 0.5;
      else {
        let s = 0;
        for (let c = 0; c < C; c++) s += d[c * n + i];
        sum += (s / C + 1) * 0.5;
      }
    }
  }
  return sum;
}

/** On the sum of the channels in [−1,1]: grey < t ⟺ sum < C·(2t − 1); grey > 1 − t ⟺ sum > C·(1 − 2t). */
const lineLimit = (C: number, polarity: SketchPolarity, threshold: number): number =>
  polarity === 'dark-lines' ? C * (2 * threshold - 1) : C * (1 - 2 * threshold);

/**
 * Line pixels of a sketch ([−1,1], any channel count; the channel mean is used): grey < `threshold`
 * for dark lines, grey > 1 − `threshold` for light lines.
 */
export function lineMap(sketch: Planar, polarity: SketchPolarity, threshold: number): Uint8Array {
  const { channels: C, height: H, width: W } = sketch;
  const n = H * W;
  const out = new Uint8Array(n);
  const d = sketch.data;
  const dark = polarity === 'dark-lines';
  const limit = lineLimit(C, polarity, threshold);
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

/** A sketch's lines as {@link sketchLines} finds them. */
export interface SketchLines {
  /** The line pixels' indices (y·W + x), in raster order. */
  pixels: Int32Array;
  /** The lines pooled onto the grid of `cell`-pixel cells ({@link poolAny} of the line map). */
  cells: Uint8Array;
  /** `cells` as a bit raster ({@link packBits}). */
  bits: Int32Array;
}

// Line pixel indices while a sketch is read, grown as needed (one sketch at a time: no re-entry).
let pixelScratch = new Int32Array(0);
const F32 = new Float32Array(1);
const F32_BITS = new Int32Array(F32.buffer);

/** The bits (as int32) of the least float32 ≥ k, for k > 0: a positive float32 w < k ⟹ bits(w) < this. */
function bitsAtLeast(k: number): number {
  F32[0] = k;
  return F32[0] < k ? F32_BITS[0] + 1 : F32_BITS[0];
}

/**
 * {@link lineMap} and {@link poolAny} in one pass, without the W×H raster: the line pixels as a
 * list and the grid cells that hold one. Same lines as `poolAny(lineMap(…), W, H, cell)`.
 *
 * The test is lineMap's, on the channel sum s: s < limit (dark lines) or −s < −limit (light
 * lines; negation is exact). Paper is most of a sketch, so blocks of pixels are first screened on
 * the bits of their float32 samples, and only the pixels of a block that passes are tested. A
 * pixel can be line only if one of its channels w (the sample, negated for light lines) is below
 * limit/C: negative, when limit ≤ 0 (the default threshold: limit 0), which is the sign bit (8
 * pixels a block: one OR, or AND for light lines, of their bits); else below limit/C + 1e-6 for
 * C = 3 (more than the rounding of the sum for samples under 10⁹ in magnitude), which for w ≥ 0 is
 * the order of the bits as integers (4 pixels a block). Channel counts other than 1 and 3 are
 * tested pixel by pixel.
 */
export function sketchLines(sketch: Planar, polarity: SketchPolarity, threshold: number, cell: number): SketchLines {
  const { pixels, bits } = sketchLineBits(sketch, polarity, threshold, cell);
  const gw = Math.ceil(sketch.width / cell);
  const gh = Math.ceil(sketch.height / cell);
  return { pixels: pixels.slice(), cells: unpackBits(bits, gw, gh), bits };
}

/**
 * {@link sketchLines} without copies: `pixels` is a view of an array kept between calls, valid
 * until the next call; the cells as bits only.
 */
export function sketchLineBits(sketch: Planar, polarity: SketchPolarity, threshold: number, cell: number): { pixels: Int32Array; bits: Int32Array } {
  checkCell(cell);
  const { channels: C, height: H, width: W } = sketch;
  const n = H * W;
  const gw = Math.ceil(W / cell);
  if (pixelScratch.length < n) pixelScratch = new Int32Array(n);
  const d = sketch.data;
  const sign = polarity === 'dark-lines' ? 1 : -1;
  const lim = sign * lineLimit(C, polarity, threshold);
  let count: number;
  if (C === 1 || C === 3) {
    // The bits of w = sign·v: those of v with the sign bit flipped for light lines.
    const flip = sign < 0 ? -0x80000000 | 0 : 0;
    const samples = new Int32Array(d.buffer, d.byteOffset, d.length);
    // lim ≤ 0 (the default threshold 0.5 gives 0): a line pixel has a negative w, as channels
    // that are all ≥ 0 sum to ≥ 0 in floating point too.
    count =
      lim > 0
        ? screenedLines(d, samples, C, n, sign, lim, flip, bitsAtLeast(lim / C + (C === 1 ? 0 : 1e-6)), pixelScratch)
        : signScreenedLines(d, samples, C, n, sign, lim, flip !== 0, pixelScratch);
  } else {
    count = exactLines(d, C, n, 0, n, sign, lim, pixelScratch, 0);
  }
  const pixels = pixelScratch.subarray(0, count);
  const bits = new Int32Array(((gw + 31) >>> 5) * Math.ceil(H / cell));
  poolList(pixels, count, W, cell, bits, columnOf(W, cell));
  return { pixels, bits };
}

/** The byte raster of a bit raster ({@link packBits}). */
function unpackBits(bits: Int32Array, W: number, H: number): Uint8Array {
  const wpr = (W + 31) >>> 5;
  const out = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) out[y * W + x] = (bits[y * wpr + (x >>> 5)] >>> (x & 31)) & 1;
  return out;
}

/** The grid column of each pixel column. */
function columnOf(W: number, cell: number): Int32Array {
  const column = new Int32Array(W);
  for (let x = 0; x < W; x++) column[x] = (x / cell) | 0;
  return column;
}

/** Pixels [from, to) tested one by one (sign·s < lim), the line pixels appended to `list`; returns the new count. */
function exactLines(d: Float32Array, C: number, n: number, from: number, to: number, sign: number, lim: number, list: Int32Array, count: number): number {
  for (let i = from; i < to; i++) {
    let s: number;
    if (C === 1) s = d[i];
    else if (C === 3) s = d[i] + d[n + i] + d[2 * n + i];
    else {
      s = 0;
      for (let c = 0; c < C; c++) s += d[c * n + i];
    }
    if (sign * s < lim) list[count++] = i;
  }
  return count;
}

/** The grid cells that hold a listed pixel (indices in raster order), as bits ({@link packBits}). */
function poolList(list: Int32Array, count: number, W: number, cell: number, bits: Int32Array, column: Int32Array): void {
  const wpr = (Math.ceil(W / cell) + 31) >>> 5;
  let rowStart = 0;
  let rowEnd = 0;
  let w = 0;
  for (let k = 0; k < count; k++) {
    const i = list[k];
    if (i >= rowEnd || i < rowStart) {
      const y = (i / W) | 0;
      rowStart = y * W;
      rowEnd = rowStart + W;
      w = ((y / cell) | 0) * wpr;
    }
    const gx = column[i - rowStart];
    bits[w + (gx >>> 5)] |= 1 << (gx & 31);
  }
}

/**
 * The screened pass of {@link sketchLines} when a line pixel needs a channel with w < 0: 8 pixels
 * at a time, a block passes when one of its samples has the sign bit set (dark lines: the OR of
 * their bits is negative) or clear (light lines, w = −v: the AND is not negative). One loop per
 * polarity and channel count (1 or 3), with nothing else in it.
 */
function signScreenedLines(d: Float32Array, bits: Int32Array, C: number, n: number, sign: number, lim: number, light: boolean, list: Int32Array): number {
  if (C === 1) return light ? light1(d, bits, n, sign, lim, list) : dark1(d, bits, n, sign, lim, list);
  return light ? light3(d, bits, n, sign, lim, list) : dark3(d, bits, n, sign, lim, list);
}

function dark1(d: Float32Array, bits: Int32Array, n: number, sign: number, lim: number, list: Int32Array): number {
  let count = 0;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    if ((bits[i] | bits[i + 1] | bits[i + 2] | bits[i + 3] | bits[i + 4] | bits[i + 5] | bits[i + 6] | bits[i + 7]) < 0) {
      count = exactLines(d, 1, n, i, i + 8, sign, lim, list, count);
    }
  }
  return exactLines(d, 1, n, i, n, sign, lim, list, count);
}

function light1(d: Float32Array, bits: Int32Array, n: number, sign: number, lim: number, list: Int32Array): number {
  let count = 0;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    if ((bits[i] & bits[i + 1] & bits[i + 2] & bits[i + 3] & bits[i + 4] & bits[i + 5] & bits[i + 6] & bits[i + 7]) >= 0) {
      count = exactLines(d, 1, n, i, i + 8, sign, lim, list, count);
    }
  }
  return exactLines(d, 1, n, i, n, sign, lim, list, count);
}

function dark3(d: Float32Array, bits: Int32Array, n: number, sign: number, lim: number, list: Int32Array): number {
  const n2 = 2 * n;
  let count = 0;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const r = bits[i] | bits[i + 1] | bits[i + 2] | bits[i + 3] | bits[i + 4] | bits[i + 5] | bits[i + 6] | bits[i + 7];
    const g = bits[n + i] | bits[n + i + 1] | bits[n + i + 2] | bits[n + i + 3] | bits[n + i + 4] | bits[n + i + 5] | bits[n + i + 6] | bits[n + i + 7];
    const b = bits[n2 + i] | bits[n2 + i + 1] | bits[n2 + i + 2] | bits[n2 + i + 3] | bits[n2 + i + 4] | bits[n2 + i + 5] | bits[n2 + i + 6] | bits[n2 + i + 7];
    if ((r | g | b) < 0) count = exactLines(d, 3, n, i, i + 8, sign, lim, list, count);
  }
  return exactLines(d, 3, n, i, n, sign, lim, list, count);
}

function light3(d: Float32Array, bits: Int32Array, n: number, sign: number, lim: number, list: Int32Array): number {
  const n2 = 2 * n;
  let count = 0;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const r = bits[i] & bits[i + 1] & bits[i + 2] & bits[i + 3] & bits[i + 4] & bits[i + 5] & bits[i + 6] & bits[i + 7];
    const g = bits[n + i] & bits[n + i + 1] & bits[n + i + 2] & bits[n + i + 3] & bits[n + i + 4] & bits[n + i + 5] & bits[n + i + 6] & bits[n + i + 7];
    const b = bits[n2 + i] & bits[n2 + i + 1] & bits[n2 + i + 2] & bits[n2 + i + 3] & bits[n2 + i + 4] & bits[n2 + i + 5] & bits[n2 + i + 6] & bits[n2 + i + 7];
    if ((r & g & b) >= 0) count = exactLines(d, 3, n, i, i + 8, sign, lim, list, count);
  }
  return exactLines(d, 3, n, i, n, sign, lim, list, count);
}

/** The screened pass of {@link sketchLines} over 1 or 3 channels, for lim > 0 (kb: the bits of k); returns the number of line pixels. */
function screenedLines(d: Float32Array, bits: Int32Array, C: number, n: number, sign: number, lim: number, flip: number, kb: number, list: Int32Array): number {
  const o1 = C === 3 ? n : 0;
  const o2 = C === 3 ? 2 * n : 0;
  let count = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    // (x − kb) | x is negative iff x < 0 or x < kb: w is negative or below k.
    let x0 = bits[i] ^ flip;
    let x1 = bits[i + 1] ^ flip;
    let x2 = bits[i + 2] ^ flip;
    let x3 = bits[i + 3] ^ flip;
    let any = ((x0 - kb) | x0) | ((x1 - kb) | x1) | ((x2 - kb) | x2) | ((x3 - kb) | x3);
    if (C === 3) {
      x0 = bits[o1 + i] ^ flip;
      x1 = bits[o1 + i + 1] ^ flip;
      x2 = bits[o1 + i + 2] ^ flip;
      x3 = bits[o1 + i + 3] ^ flip;
      any |= ((x0 - kb) | x0) | ((x1 - kb) | x1) | ((x2 - kb) | x2) | ((x3 - kb) | x3);
      x0 = bits[o2 + i] ^ flip;
      x1 = bits[o2 + i + 1] ^ flip;
      x2 = bits[o2 + i + 2] ^ flip;
      x3 = bits[o2 + i + 3] ^ flip;
      any |= ((x0 - kb) | x0) | ((x1 - kb) | x1) | ((x2 - kb) | x2) | ((x3 - kb) | x3);
    }
    if (any < 0) count = exactLines(d, C, n, i, i + 4, sign, lim, list, count);
  }
  return exactLines(d, C, n, i, n, sign, lim, list, count);
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
 * with running counts, so O(W·H) whatever the radius; both passes run along rows.
 */
export function dilate(bits: Uint8Array, W: number, H: number, radius: number): Uint8Array {
  if (!Number.isInteger(radius) || radius < 0) throw new RangeError(`radius must be a non-negative integer, got ${radius}`);
  if (radius === 0) return bits.slice();
  const tmp = new Uint8Array(W * H);
  dilateRows(bits, tmp, W, H, radius);
  const out = new Uint8Array(W * H);
  dilateColumns(tmp, out, W, H, radius, new Int32Array(W));
  return out;
}

function dilateRows(bits: Uint8Array, out: Uint8Array, W: number, H: number, radius: number): void {
  for (let y = 0; y < H; y++) {
    const o = y * W;
    let count = 0;
    for (let x = 0; x < Math.min(W, radius); x++) count += bits[o + x];
    for (let x = 0; x < W; x++) {
      if (x + radius < W) count += bits[o + x + radius];
      if (x - radius - 1 >= 0) count -= bits[o + x - radius - 1];
      out[o + x] = count > 0 ? 1 : 0;
    }
  }
}

/** Vertically, along rows: per column, how many of the rows y−radius … y+radius are set. */
function dilateColumns(bits: Uint8Array, out: Uint8Array, W: number, H: number, radius: number, counts: Int32Array): void {
  for (let y = -radius; y < H; y++) {
    if (y + radius < H) {
      const add = (y + radius) * W;
      for (let x = 0; x < W; x++) counts[x] += bits[add + x];
    }
    if (y - radius - 1 >= 0) {
      const sub = (y - radius - 1) * W;
      for (let x = 0; x < W; x++) counts[x] -= bits[sub + x];
    }
    if (y >= 0) {
      const o = y * W;
      for (let x = 0; x < W; x++) out[o + x] = counts[x] > 0 ? 1 : 0;
    }
  }
}

/** Regions of a line raster: 4-connected components of the cells that are not line. */
export interface Regions {
  /** Per cell: 0 on a line, else the region id (1-based). */
  labels: Int32Array;
  /** Cells per region, indexed by id (index 0 unused). */
  sizes: Int32Array;
}

/**
 * Labels the paper between the lines: the runs of paper along each row, joined with the runs of
 * the row above that they touch (union–find), then numbered (O(W·H), per-cell work only to find the
 * runs and to write the labels). Region ids follow the raster order of each region's first cell,
 * as a flood fill started at every cell not yet labelled would number them.
 */
export function regions(lines: Uint8Array, W: number, H: number): Regions {
  return regionsOfBits(packBits(lines, W, H), W, H);
}

/** {@link regions} of a bit raster ({@link packBits}): the runs of paper are found a word at a time. */
export function regionsOfBits(lines: Int32Array, W: number, H: number): Regions {
  const n = W * H;
  const labels = new Int32Array(n);
  // Runs: at most one per paper cell, each with its start, end and provisional label; parent[k] ≤ k,
  // roots point to themselves. Every entry is written before it is read: kept between calls.
  if (runStart.length < n + 1) {
    runStart = new Int32Array(n + 1);
    runEnd = new Int32Array(n + 1);
    runLabel = new Int32Array(n + 1);
    parentScratch = new Int32Array(n + 2);
  }
  const runs = findRuns(lines, W, H, runStart, runEnd, runLabel, parentScratch);
  const sizes = new Int32Array(runs + 1);
  const count = labelRuns(runStart, runEnd, runLabel, runs, parentScratch, labels, sizes);
  return { labels, sizes: sizes.slice(0, count) };
}

let runStart = new Int32Array(0);
let runEnd = new Int32Array(0);
let runLabel = new Int32Array(0);
let parentScratch = new Int32Array(0);

/**
 * The first x ≥ `from` (and < W) of row word offset `o` whose bit is `want` (1: set, 0: clear);
 * W when there is none.
 */
function nextBit(bits: Int32Array, o: number, from: number, W: number, want: number): number {
  let j = from >>> 5;
  const last = (W - 1) >>> 5;
  // Bits to look at: the set ones of the word, inverted when looking for clear bits.
  let w = (want ? bits[o + j] : ~bits[o + j]) & (-1 << (from & 31));
  while (w === 0) {
    if (++j > last) return W;
    w = want ? bits[o + j] : ~bits[o + j];
  }
  const x = j * 32 + 31 - Math.clz32(w & -w);
  return x < W ? x : W;
}

/**
 * The runs of paper (clear bits), in raster order ([start, end) as cell indices), each labelled and
 * joined to the runs of the row above it overlaps; returns how many.
 */
function findRuns(lines: Int32Array, W: number, H: number, start: Int32Array, end: Int32Array, label: Int32Array, parent: Int32Array): number {
  const wpr = (W + 31) >>> 5;
  let runs = 0;
  let next = 1;
  let above = 0; // first run of the row above
  let aboveEnd = 0; // one past its last
  for (let y = 0; y < H; y++) {
    const o = y * W;
    const ob = y * wpr;
    const rowRuns = runs;
    let q = above;
    let x = 0;
    while (x < W) {
      x = nextBit(lines, ob, x, W, 0);
      if (x >= W) break;
      const s = x;
      x = nextBit(lines, ob, x, W, 1);
      // Runs above that overlap [s, x): they end after s and start before x (in their row).
      while (q < aboveEnd && end[q] - o + W <= s) q++;
      let l = 0;
      for (let r = q; r < aboveEnd && start[r] - o + W < x; r++) {
        const k = root(parent, label[r]);
        if (l === 0) l = k;
        else if (k < l) {
          parent[l] = k;
          l = k;
        } else if (k > l) parent[k] = l;
      }
      if (l === 0) {
        l = next++;
        parent[l] = l;
      }
      start[runs] = o + s;
      end[runs] = o + x;
      label[runs] = l;
      runs++;
    }
    above = rowRuns;
    aboveEnd = runs;
  }
  return runs;
}

/** Final ids in the raster order of each region's first run, written to `labels`; returns 1 + the last id. */
function labelRuns(start: Int32Array, end: Int32Array, label: Int32Array, runs: number, parent: Int32Array, labels: Int32Array, sizes: Int32Array): number {
  const id = new Int32Array(runs + 2);
  let ids = 1;
  for (let r = 0; r < runs; r++) {
    const k = root(parent, label[r]);
    let f = id[k];
    if (f === 0) f = id[k] = ids++;
    const e = end[r];
    for (let i = start[r]; i < e; i++) labels[i] = f;
    sizes[f] += e - start[r];
  }
  return ids;
}

/** The root of label k, halving the path on the way. */
function root(parent: Int32Array, k: number): number {
  while (parent[k] !== k) {
    parent[k] = parent[parent[k]];
    k = parent[k];
  }
  return k;
}

/**
 * A [0,1] mask of any size covering the same frame, read at the centre of every cell of a
 * `cell`-sized grid over W×H (nearest neighbour): 1 where the value is ≥ `threshold`. The sketch
 * mask the pipeline keeps at latent size works as well as a full-size one. With `stride` s, only
 * the cells {@link labGrid} computes with that stride (grid coordinates multiples of s).
 */
export function maskGrid(mask: Planar, W: number, H: number, cell: number, threshold = 0.5, stride = 1): Uint8Array {
  checkCell(cell);
  checkStride(stride);
  const { height: mh, width: mw } = mask;
  const gw = Math.ceil(W / cell);
  const gh = Math.ceil(H / cell);
  const sw = Math.ceil(gw / stride);
  const sh = Math.ceil(gh / stride);
  const mx = new Int32Array(sw);
  for (let sx = 0; sx < sw; sx++) mx[sx] = Math.min(mw - 1, Math.floor((Math.min(W, (sx * stride + 0.5) * cell) * mw) / W));
  const out = new Uint8Array(sw * sh);
  for (let sy = 0; sy < sh; sy++) {
    const my = Math.min(mh - 1, Math.floor((Math.min(H, (sy * stride + 0.5) * cell) * mh) / H));
    for (let sx = 0; sx < sw; sx++) out[sy * sw + sx] = mask.data[my * mw + mx[sx]] >= threshold ? 1 : 0;
  }
  return out;
}

function cellOfColumn(W: number, cell: number): Int32Array {
  const col = new Int32Array(W);
  for (let x = 0; x < W; x++) col[x] = (x / cell) | 0;
  return col;
}

function checkStride(stride: number): void {
  if (!Number.isInteger(stride) || stride < 1) throw new RangeError(`stride must be a positive integer, got ${stride}`);
}

function checkCell(cell: number): void {
  if (!Number.isInteger(cell) || cell < 1) throw new RangeError(`cell must be a positive integer, got ${cell}`);
}
