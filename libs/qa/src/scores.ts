/**
 * The three measurements behind a frame's scores, each a pure function over typed arrays with no
 * per-pixel allocation. Definitions, ranges and defaults are in the README of this package.
 */
import type { Planar } from '@celfarm/pipeline';
import { deltaE00 } from './ciede2000.ts';
import { luminanceOfL, pixelLuminance, type LabImage } from './lab.ts';
import type { Palette } from './palette.ts';
import { cellLightness, dilateBits, type Regions } from './raster.ts';

/**
 * Palette distance: Σ over the output palette's entries of share × ΔE00 to the nearest colour of
 * the reference palette. 0 when every dominant output colour is one of the reference's; in ΔE00
 * units, so about 2 is barely visible and 10 a clearly different colour over the whole character.
 * Null when either palette is empty (nothing counted).
 */
export function paletteDistance(output: Palette, reference: Palette): number | null {
  if (output.entries.length === 0 || reference.entries.length === 0) return null;
  let sum = 0;
  for (const o of output.entries) {
    let best = Infinity;
    for (const r of reference.entries) best = Math.min(best, deltaE00(o.L, o.a, o.b, r.L, r.a, r.b));
    sum += o.share * best;
  }
  return sum;
}

/** Options of {@link lineFidelity}. */
export interface LineFidelityOptions {
  /** A line is dark only where the output's L* is ≤ this. Default 50 (mid-grey). */
  darkL?: number;
  /**
   * …and at least this much darker (in L*) than the darkest fill nearby (the grid cells within two
   * cells that hold no line pixel), so that a line painted over with a dark fill is not kept.
   * Default 10.
   */
  contrast?: number;
  /** A line pixel also counts as kept when such a pixel is this many pixels away (square). Default 1. */
  tolerance?: number;
}

/** What {@link lineFidelity} counted. */
export interface LineCount {
  /** Kept ÷ line pixels, [0,1]; null when the sketch has no line pixel. */
  value: number | null;
  linePixels: number;
  kept: number;
}

/** The grid, for the fills next to the lines. */
export interface LineContext {
  /** Per cell of the grid: 0 when it holds a line pixel (the labels of {@link Regions}). */
  labels: Int32Array;
  cell: number;
  /** The line cells (label 0) as a bit raster ({@link packBits}), when at hand; else made from `labels`. */
  lineBits?: Int32Array;
  /** The output's colour grid ({@link labGrid} with `stride`), when at hand: the fills it holds are read from it. */
  lab?: LabImage;
  /** The stride of `lab`. Default 1. */
  stride?: number;
}

/**
 * Share of the sketch's line pixels that stay dark lines in the output. A line pixel is kept when
 * the output there (or within `tolerance` pixels) has L* ≤ `darkL` and L* ≤ (darkest nearby fill)
 * − `contrast`; without a `context`, or where no fill cell is within two cells, the first test
 * alone decides. `lines` is a full-size raster of the output's size. The fills are the grid's
 * cells (their mean colour, as {@link labGrid} computes it) that hold no line pixel.
 */
export function lineFidelity(output: Planar, lines: Uint8Array, context: LineContext | null, options: LineFidelityOptions = {}): LineCount {
  const n = output.height * output.width;
  if (lines.length !== n) throw new RangeError(`line raster has ${lines.length} pixels, output has ${n}`);
  const pixels = setIndices(lines, countSet(lines));
  return lineFidelityOf(output, pixels, context, options);
}

function countSet(bits: Uint8Array): number {
  let count = 0;
  for (let i = 0; i < bits.length; i++) count += bits[i] ? 1 : 0;
  return count;
}

function setIndices(bits: Uint8Array, count: number): Int32Array {
  const out = new Int32Array(count);
  for (let i = 0, k = 0; i < bits.length; i++) if (bits[i]) out[k++] = i;
  return out;
}

/** {@link lineFidelity} of the line pixels listed by index (y·W + x), as {@link sketchLines} lists them. */
export function lineFidelityOf(output: Planar, pixels: Int32Array, context: LineContext | null, options: LineFidelityOptions = {}): LineCount {
  const darkL = options.darkL ?? 50;
  const contrast = options.contrast ?? 10;
  const t = options.tolerance ?? 1;
  if (!Number.isInteger(t) || t < 0) throw new RangeError(`tolerance must be a non-negative integer, got ${t}`);
  const { channels: C, height: H, width: W } = output;
  if (C !== 3 && C !== 1) throw new RangeError(`the output needs 1 or 3 channels, got ${C}`);
  const n = H * W;
  const d = output.data;
  const o1 = C === 3 ? n : 0;
  const o2 = C === 3 ? 2 * n : 0;

  // Per line cell, the largest luminance its line pixels may have (compared in Y, which orders as L*).
  const yDark = luminanceOfL(darkL);
  let limit: Float64Array | null = null;
  let cell = 1;
  let gw = 1;
  if (context) {
    const { labels } = context;
    cell = context.cell;
    gw = Math.ceil(W / cell);
    const gh = Math.ceil(H / cell);
    const m = gw * gh;
    if (labels.length !== m) throw new RangeError(`${labels.length} labels is not the grid of a ${W}×${H} output at cell ${cell}`);
    // The fills that matter: cells without a line pixel within two cells of one that has. Their L*
    // (cell means, as labGrid computes them), then per line cell the darkest of them.
    const lines = context.lineBits ?? zeroBits(labels, gw, gh);
    const near = andNot(dilateBits(lines, gw, gh, 2), lines);
    // Kept between calls: `fill` is set to +∞, then written for those fills; `limit` is written
    // for the line cells, and read only there.
    if (limitScratch.length < m) {
      limitScratch = new Float64Array(m);
      fillScratch = new Float32Array(m);
    }
    const fill = fillScratch.fill(Infinity, 0, m);
    const { lab } = context;
    const stride = context.stride ?? 1;
    if (lab && lab.width === Math.ceil(gw / stride) && lab.height === Math.ceil(gh / stride)) {
      // The fills the colour grid holds are there already (the same L*, bit for bit).
      const held = strideBits(gw, gh, stride);
      fillFromGrid(lab.L, near, held, gw, gh, stride, fill);
      andNot(near, held);
    }
    cellLightness(output, cell, near, fill);
    limit = limitScratch;
    lineCellLimits(fill, lines, gw, gh, darkL, contrast, yDark, limit);
  }
  const kept = countKept(d, o1, o2, W, H, pixels, t, cell, columnCells(W, cell), gw, limit, yDark);
  const linePixels = pixels.length;
  return { value: linePixels > 0 ? kept / linePixels : null, linePixels, kept };
}

let limitScratch = new Float64Array(0);
let fillScratch = new Float32Array(0);

/** The cells whose coordinates are both multiples of `stride`, as a bit raster. */
function strideBits(gw: number, gh: number, stride: number): Int32Array {
  const wpr = (gw + 31) >>> 5;
  const out = new Int32Array(wpr * gh);
  for (let gy = 0; gy < gh; gy += stride) for (let gx = 0; gx < gw; gx += stride) out[gy * wpr + (gx >>> 5)] |= 1 << (gx & 31);
  return out;
}

/** fill[cell] = L[its place in the stride grid], for the cells set in both `want` and `held`. */
function fillFromGrid(L: Float32Array, want: Int32Array, held: Int32Array, gw: number, gh: number, stride: number, fill: Float32Array): void {
  const wpr = (gw + 31) >>> 5;
  const sw = Math.ceil(gw / stride);
  for (let gy = 0; gy < gh; gy += stride) {
    for (let j = 0; j < wpr; j++) {
      let w = want[gy * wpr + j] & held[gy * wpr + j];
      while (w !== 0) {
        const low = w & -w;
        const gx = j * 32 + 31 - Math.clz32(low);
        fill[gy * gw + gx] = L[(gy / stride) * sw + gx / stride];
        w ^= low;
      }
    }
  }
}

/** a &= ~b, word by word; returns a. */
function andNot(a: Int32Array, b: Int32Array): Int32Array {
  for (let j = 0; j < a.length; j++) a[j] &= ~b[j];
  return a;
}

/** The cells whose label is 0 (line cells), as a bit raster of 32 cells a word. */
function zeroBits(labels: Int32Array, gw: number, gh: number): Int32Array {
  const wpr = (gw + 31) >>> 5;
  const out = new Int32Array(wpr * gh);
  for (let y = 0; y < gh; y++) {
    const o = y * gw;
    const w = y * wpr;
    for (let x = 0; x < gw; x++) if (labels[o + x] === 0) out[w + (x >>> 5)] |= 1 << (x & 31);
  }
  return out;
}

/**
 * For each line cell (set in `lines`): the luminance of L* = min(darkL, darkest fill − contrast),
 * the darkest fill being the least of `fill` (L* of the fills, +∞ elsewhere) over the 5×5 cells
 * around it; of L* = darkL where there is none (+∞).
 */
function lineCellLimits(fill: Float32Array, lines: Int32Array, gw: number, gh: number, darkL: number, contrast: number, yDark: number, limit: Float64Array): void {
  const wpr = (gw + 31) >>> 5;
  for (let gy = 0; gy < gh; gy++) {
    const y0 = Math.max(0, gy - 2);
    const y1 = Math.min(gh - 1, gy + 2);
    for (let j = 0; j < wpr; j++) {
      let w = lines[gy * wpr + j];
      while (w !== 0) {
        const low = w & -w;
        const gx = j * 32 + 31 - Math.clz32(low);
        const x0 = Math.max(0, gx - 2);
        const x1 = Math.min(gw - 1, gx + 2);
        let darkest = Infinity;
        for (let yy = y0; yy <= y1; yy++) {
          for (let k = yy * gw + x0, e = yy * gw + x1; k <= e; k++) {
            if (fill[k] < darkest) darkest = fill[k];
          }
        }
        limit[gy * gw + gx] = darkest - contrast < darkL ? luminanceOfL(darkest - contrast) : yDark;
        w ^= low;
      }
    }
  }
}

/** The grid column of each pixel column. */
function columnCells(W: number, cell: number): Int32Array {
  const column = new Int32Array(W);
  for (let x = 0; x < W; x++) column[x] = (x / cell) | 0;
  return column;
}

/** How many of the line pixels have a pixel within `t` whose luminance is at most their cell's limit. */
function countKept(
  d: Float32Array,
  o1: number,
  o2: number,
  W: number,
  H: number,
  pixels: Int32Array,
  t: number,
  cell: number,
  column: Int32Array,
  gw: number,
  limit: Float64Array | null,
  yDark: number,
): number {
  let kept = 0;
  let y = 0;
  let rowStart = 0;
  let rowEnd = 0;
  let cellRow = 0;
  for (let p = 0; p < pixels.length; p++) {
    const i = pixels[p];
    if (i >= rowEnd || i < rowStart) {
      y = (i / W) | 0;
      rowStart = y * W;
      rowEnd = rowStart + W;
      cellRow = ((y / cell) | 0) * gw;
    }
    const x = i - rowStart;
    const yMax = limit ? limit[cellRow + column[x]] : yDark;
    if (pixelLuminance(d, i, o1, o2) <= yMax) {
      kept++;
      continue;
    }
    let found = false;
    for (let yy = Math.max(0, y - t); yy <= Math.min(H - 1, y + t) && !found; yy++) {
      for (let xx = Math.max(0, x - t); xx <= Math.min(W - 1, x + t); xx++) {
        if (pixelLuminance(d, yy * W + xx, o1, o2) <= yMax) {
          found = true;
          break;
        }
      }
    }
    if (found) kept++;
  }
  return kept;
}

/** One frame's side of a flicker comparison, as {@link analyzeFrame} prepares it. */
export interface FlickerSide {
  /** Full-size W×H. */
  width: number;
  height: number;
  /** Grid cell edge in pixels. */
  cell: number;
  /** `lab` holds the grid cells whose coordinates are multiples of this ({@link labGrid}). */
  stride: number;
  /** Output colours on the grid: every `stride`-th cell in each direction. */
  lab: LabImage;
  /** Regions of the sketch's lines pooled onto the whole grid (label 0: a cell with a line pixel). */
  regions: Regions;
}

/** Options of {@link flicker}. */
export interface FlickerOptions {
  /** ΔE00 above which a pixel's change counts as noticeable. Default 2.3. */
  jnd?: number;
  /** Pixels around a line that differs between the two sketches that are left out. Default 8. */
  changeRadius?: number;
  /** Below this share of the frame measured, the frame has no flicker value. Default 0.01. */
  minMeasuredShare?: number;
}

/** What {@link flicker} measured. */
export interface FlickerCount {
  /** Mean ΔE00 between the two outputs over the measured cells (of the colour sample); null when too little is measured. */
  mean: number | null;
  /** Share of the measured cells (of the colour sample) whose ΔE00 is over `jnd`; null with `mean`. */
  overJnd: number | null;
  /** Measured cells ÷ all cells (the whole grid): how much of the frame had line art that did not change. */
  measuredShare: number;
}

/**
 * Colour change between two consecutive outputs where their sketches agree, on the grid. A cell is
 * measured when (1) no cell within `changeRadius` pixels of it is line (holds a line pixel) in one
 * sketch and not in the other — a line that moves less than a cell is within tolerance — and
 * (2) it is line in both sketches, or the region (paper between the lines) it lies in in one sketch
 * and the region it lies in in the other correspond: each is the other's largest overlap. (1)
 * leaves out the neighbourhood of moved lines; (2) leaves out what a moving shape swept over, whose
 * paper looks the same in both sketches but belongs to the background in one and to the shape in
 * the other. Colours are compared at the same pixel position (no motion compensation).
 *
 * Which cells are measured is decided on the whole grid (`measuredShare` counts them all); the
 * colours are compared on the cells the two sides' `lab` hold (with stride s, the measured cells
 * whose coordinates are multiples of s): `mean` and `overJnd` are over those. No value when none
 * of them is measured.
 */
export function flicker(cur: FlickerSide, prev: FlickerSide, options: FlickerOptions = {}): FlickerCount {
  const jnd = options.jnd ?? 2.3;
  const radius = options.changeRadius ?? 8;
  const minShare = options.minMeasuredShare ?? 0.01;
  const { width: W, height: H, cell, stride } = cur;
  if (prev.width !== W || prev.height !== H || prev.cell !== cell || prev.stride !== stride) {
    throw new RangeError(
      `frames differ: ${W}×${H} (cell ${cell}, stride ${stride}) against ${prev.width}×${prev.height} (cell ${prev.cell}, stride ${prev.stride})`,
    );
  }
  const r = Math.ceil(radius / cell);
  if (!Number.isInteger(r) || r < 0) throw new RangeError(`changeRadius must be a non-negative number, got ${radius}`);
  const gw = Math.ceil(W / cell);
  const gh = Math.ceil(H / cell);
  const m = gw * gh;
  const la = cur.regions.labels;
  const lb = prev.regions.labels;
  const nb = prev.regions.sizes.length;
  // Cells that are line in one sketch only (a bit raster, 32 cells a word), the cells shared by
  // each pair of regions, and how many cells are line in both.
  const changed = new Int32Array(((gw + 31) >>> 5) * gh);
  const inter = new Map<number, number>();
  const bothLine = changedAndOverlaps(la, lb, gw, gh, nb, changed, inter);
  // The neighbourhood of the changed cells; which pairs of regions are the same region.
  const near = dilateBits(changed, gw, gh, r);
  const { bestA, bestB } = mutualBest(inter, cur.regions.sizes.length, nb);
  // Measured: the cells that qualify (line in both, or in a pair of the same region) and are not
  // near a changed line; counted as all that qualify less those near.
  let qualifying = bothLine;
  inter.forEach((count, key) => {
    const a = Math.floor(key / nb);
    const b = key - a * nb;
    if (bestB[a] === b && bestA[b] === a) qualifying += count;
  });
  const measured = qualifying - qualifyingNear(la, lb, near, gw, gh, nb, bestA, bestB);
  const sums = new Float64Array(3);
  compareColours(la, lb, near, gw, gh, nb, bestA, bestB, stride, cur.lab, prev.lab, jnd, sums);
  const sampled = sums[0];
  const measuredShare = m > 0 ? measured / m : 0;
  if (sampled === 0 || measuredShare < minShare) return { mean: null, overJnd: null, measuredShare };
  return { mean: sums[1] / sampled, overJnd: sums[2] / sampled, measuredShare };
}

// The kernels of flicker: one loop nest each, nothing but a return after it (V8 compiles a hot
// loop before the code after it has run; code without feedback there would be left on every call).

/**
 * Per cell, whether it is line in one sketch and not in the other, as a bit raster (row y, cell x
 * is bit x & 31 of word y·⌈gw/32⌉ + (x >> 5)); into `inter` the cells each pair of regions (key
 * a·nb + b) shares, one map update per run of a pair along the rows; returns how many cells are
 * line in both.
 */
function changedAndOverlaps(la: Int32Array, lb: Int32Array, gw: number, gh: number, nb: number, changed: Int32Array, inter: Map<number, number>): number {
  const wpr = (gw + 31) >>> 5;
  const m = gw * gh;
  let bothLine = 0;
  let runKey = -1;
  let run = 0;
  let x = 0;
  let w = 0;
  // One pass, with a last step past the end (key −1) that ends the last run: nothing follows the
  // loop but the return.
  for (let i = 0; i <= m; i++) {
    let key = -1;
    if (i < m) {
      const a = la[i];
      const b = lb[i];
      if (a !== 0 && b !== 0) key = a * nb + b;
      else if (a !== 0 || b !== 0) changed[w + (x >>> 5)] |= 1 << (x & 31);
      else bothLine++;
      if (++x === gw) {
        x = 0;
        w += wpr;
      }
    }
    if (key === runKey) run++;
    else {
      if (runKey >= 0) inter.set(runKey, (inter.get(runKey) ?? 0) + run);
      runKey = key;
      run = 1;
    }
  }
  return bothLine;
}

/** Mutual best match: region a's largest overlap is b (ties: the smaller id), and b's is a. */
function mutualBest(inter: Map<number, number>, na: number, nb: number): { bestA: Int32Array; bestB: Int32Array } {
  const bestB = new Int32Array(na);
  const bestBCount = new Float64Array(na);
  const bestA = new Int32Array(nb);
  const bestACount = new Float64Array(nb);
  inter.forEach((count, key) => {
    const a = Math.floor(key / nb);
    const b = key - a * nb;
    if (count > bestBCount[a] || (count === bestBCount[a] && b < bestB[a])) {
      bestBCount[a] = count;
      bestB[a] = b;
    }
    if (count > bestACount[b] || (count === bestACount[b] && a < bestA[b])) {
      bestACount[b] = count;
      bestA[b] = a;
    }
  });
  return { bestA, bestB };
}

/** Whether a cell qualifies for flicker: line in both sketches, or in regions that are the same region. */
function qualifies(a: number, b: number, nb: number, bestA: Int32Array, bestB: Int32Array): boolean {
  if (a === 0 || b === 0) return a === b;
  return bestB[a] === b && bestA[b] === a;
}

/** How many of the cells set in `near` qualify (the set bits are visited, not the cells). */
function qualifyingNear(la: Int32Array, lb: Int32Array, near: Int32Array, gw: number, gh: number, nb: number, bestA: Int32Array, bestB: Int32Array): number {
  const wpr = (gw + 31) >>> 5;
  let count = 0;
  for (let y = 0; y < gh; y++) {
    for (let j = 0; j < wpr; j++) {
      let w = near[y * wpr + j];
      while (w !== 0) {
        const low = w & -w;
        const i = y * gw + j * 32 + 31 - Math.clz32(low);
        if (qualifies(la[i], lb[i], nb, bestA, bestB)) count++;
        w ^= low;
      }
    }
  }
  return count;
}

/**
 * ΔE00 between the two sides' colours over the measured cells that `lab` holds (coordinates
 * multiples of `stride`): out[0] their count, out[1] the sum of ΔE00, out[2] how many are over `jnd`.
 */
function compareColours(
  la: Int32Array,
  lb: Int32Array,
  near: Int32Array,
  gw: number,
  gh: number,
  nb: number,
  bestA: Int32Array,
  bestB: Int32Array,
  stride: number,
  A: LabImage,
  B: LabImage,
  jnd: number,
  out: Float64Array,
): void {
  const wpr = (gw + 31) >>> 5;
  const sw = A.width;
  // The totals go to `out` as they change: nothing follows the loop.
  let count = 0;
  let sum = 0;
  let over = 0;
  for (let gy = 0, sy = 0; gy < gh; gy += stride, sy++) {
    const o = gy * gw;
    const w = gy * wpr;
    const so = sy * sw;
    for (let gx = 0, sx = 0; gx < gw; gx += stride, sx++) {
      if ((near[w + (gx >>> 5)] >>> (gx & 31)) & 1) continue;
      if (!qualifies(la[o + gx], lb[o + gx], nb, bestA, bestB)) continue;
      count++;
      const j = so + sx;
      const L1 = A.L[j];
      const a1 = A.a[j];
      const b1 = A.b[j];
      const L2 = B.L[j];
      const a2 = B.a[j];
      const b2 = B.b[j];
      out[0] = count;
      if (L1 === L2 && a1 === a2 && b1 === b2) continue;
      const e = deltaE00(L1, a1, b1, L2, a2, b2);
      out[1] = sum += e;
      if (e > jnd) out[2] = ++over;
    }
  }
}
