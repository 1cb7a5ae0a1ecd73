/**
 * The three measurements behind a frame's scores, each a pure function over typed arrays with no
 * per-pixel allocation. Definitions, ranges and defaults are in the README of this package.
 */
import type { Planar } from '@celfarm/pipeline';
import { deltaE00 } from './ciede2000.ts';
import { linearChannel, luminance, luminanceOfL, type LabImage } from './lab.ts';
import type { Palette } from './palette.ts';
import { dilate, type Regions } from './raster.ts';

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

/** The output's grid, for the fills next to the lines. */
export interface LineContext {
  /** Output colours on the grid (cell means). */
  lab: LabImage;
  /** Per cell: 0 when it holds a line pixel (the labels of {@link Regions}). */
  labels: Int32Array;
  cell: number;
}

/**
 * Share of the sketch's line pixels that stay dark lines in the output. A line pixel is kept when
 * the output there (or within `tolerance` pixels) has L* ≤ `darkL` and L* ≤ (darkest nearby fill)
 * − `contrast`; without a `context`, or where no fill cell is within two cells, the first test
 * alone decides. `lines` is a full-size raster of the output's size.
 */
export function lineFidelity(output: Planar, lines: Uint8Array, context: LineContext | null, options: LineFidelityOptions = {}): LineCount {
  const darkL = options.darkL ?? 50;
  const contrast = options.contrast ?? 10;
  const t = options.tolerance ?? 1;
  if (!Number.isInteger(t) || t < 0) throw new RangeError(`tolerance must be a non-negative integer, got ${t}`);
  const { channels: C, height: H, width: W } = output;
  if (C !== 3 && C !== 1) throw new RangeError(`the output needs 1 or 3 channels, got ${C}`);
  const n = H * W;
  if (lines.length !== n) throw new RangeError(`line raster has ${lines.length} pixels, output has ${n}`);
  const d = output.data;
  const o1 = C === 3 ? n : 0;
  const o2 = C === 3 ? 2 * n : 0;
  const Y = (i: number): number => luminance(linearChannel(d[i]), linearChannel(d[o1 + i]), linearChannel(d[o2 + i]));

  // Per line cell, the largest luminance its line pixels may have (compared in Y, which orders as L*).
  const yDark = luminanceOfL(darkL);
  let cell = 1;
  let gw = 0;
  let limit: Float64Array | null = null;
  if (context) {
    const { lab, labels } = context;
    cell = context.cell;
    gw = lab.width;
    const gh = lab.height;
    limit = new Float64Array(gw * gh).fill(yDark);
    for (let gy = 0; gy < gh; gy++) {
      for (let gx = 0; gx < gw; gx++) {
        const g = gy * gw + gx;
        if (labels[g] !== 0) continue;
        let fill = Infinity;
        for (let yy = Math.max(0, gy - 2); yy <= Math.min(gh - 1, gy + 2); yy++) {
          for (let xx = Math.max(0, gx - 2); xx <= Math.min(gw - 1, gx + 2); xx++) {
            const k = yy * gw + xx;
            if (labels[k] !== 0 && lab.L[k] < fill) fill = lab.L[k];
          }
        }
        if (fill < Infinity) limit[g] = luminanceOfL(Math.min(darkL, fill - contrast));
      }
    }
  }

  let linePixels = 0;
  let kept = 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      if (!lines[i]) continue;
      linePixels++;
      const yMax = limit ? limit[((y / cell) | 0) * gw + ((x / cell) | 0)] : yDark;
      if (Y(i) <= yMax) {
        kept++;
        continue;
      }
      let found = false;
      for (let yy = Math.max(0, y - t); yy <= Math.min(H - 1, y + t) && !found; yy++) {
        for (let xx = Math.max(0, x - t); xx <= Math.min(W - 1, x + t); xx++) {
          if (Y(yy * W + xx) <= yMax) {
            found = true;
            break;
          }
        }
      }
      if (found) kept++;
    }
  }
  return { value: linePixels > 0 ? kept / linePixels : null, linePixels, kept };
}

/** One frame's side of a flicker comparison, as {@link analyzeFrame} prepares it. */
export interface FlickerSide {
  /** Full-size W×H. */
  width: number;
  height: number;
  /** Grid cell edge in pixels. */
  cell: number;
  /** Output colours on the grid. */
  lab: LabImage;
  /** Regions of the sketch's lines pooled onto the grid (label 0: a cell with a line pixel). */
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
  /** Mean ΔE00 between the two outputs over the measured cells; null when too little is measured. */
  mean: number | null;
  /** Share of the measured cells whose ΔE00 is over `jnd`; null with `mean`. */
  overJnd: number | null;
  /** Measured cells ÷ all cells: how much of the frame had line art that did not change. */
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
 */
export function flicker(cur: FlickerSide, prev: FlickerSide, options: FlickerOptions = {}): FlickerCount {
  const jnd = options.jnd ?? 2.3;
  const radius = options.changeRadius ?? 8;
  const minShare = options.minMeasuredShare ?? 0.01;
  const { width: W, height: H, cell } = cur;
  if (prev.width !== W || prev.height !== H || prev.cell !== cell) {
    throw new RangeError(`frames differ: ${W}×${H} (cell ${cell}) against ${prev.width}×${prev.height} (cell ${prev.cell})`);
  }
  const gw = cur.lab.width;
  const gh = cur.lab.height;
  const m = gw * gh;
  const la = cur.regions.labels;
  const lb = prev.regions.labels;
  // Cells that are line in one sketch only, and their neighbourhood.
  const changed = new Uint8Array(m);
  for (let i = 0; i < m; i++) changed[i] = (la[i] === 0) !== (lb[i] === 0) ? 1 : 0;
  const near = dilate(changed, gw, gh, Math.ceil(radius / cell));

  // Intersections of region pairs, then which pairs are the same region.
  const sa = cur.regions.sizes;
  const sb = prev.regions.sizes;
  const stride = sb.length;
  const inter = new Map<number, number>();
  // Runs of one pair are long (regions are areas), so counts go to the map once per run.
  let runKey = -1;
  let run = 0;
  for (let i = 0; i <= m; i++) {
    const key = i < m && la[i] !== 0 && lb[i] !== 0 ? la[i] * stride + lb[i] : -1;
    if (key === runKey) {
      run++;
      continue;
    }
    if (runKey >= 0) inter.set(runKey, (inter.get(runKey) ?? 0) + run);
    runKey = key;
    run = 1;
  }
  // Mutual best match: region a's largest overlap is b, and b's largest overlap is a.
  const bestB = new Int32Array(sa.length);
  const bestBCount = new Float64Array(sa.length);
  const bestA = new Int32Array(stride);
  const bestACount = new Float64Array(stride);
  for (const [key, count] of inter) {
    const a = Math.floor(key / stride);
    const b = key - a * stride;
    if (count > bestBCount[a] || (count === bestBCount[a] && b < bestB[a])) {
      bestBCount[a] = count;
      bestB[a] = b;
    }
    if (count > bestACount[b] || (count === bestACount[b] && a < bestA[b])) {
      bestACount[b] = count;
      bestA[b] = a;
    }
  }
  const same = (key: number): boolean => {
    const a = Math.floor(key / stride);
    const b = key - a * stride;
    return bestB[a] === b && bestA[b] === a;
  };

  let measured = 0;
  let sum = 0;
  let over = 0;
  let lastKey = -1;
  let lastSame = false;
  const A = cur.lab;
  const B = prev.lab;
  for (let i = 0; i < m; i++) {
    if (near[i]) continue;
    if (la[i] !== 0 || lb[i] !== 0) {
      if (la[i] === 0 || lb[i] === 0) continue;
      const key = la[i] * stride + lb[i];
      if (key !== lastKey) {
        lastKey = key;
        lastSame = same(key);
      }
      if (!lastSame) continue;
    }
    measured++;
    const L1 = A.L[i];
    const a1 = A.a[i];
    const b1 = A.b[i];
    const L2 = B.L[i];
    const a2 = B.a[i];
    const b2 = B.b[i];
    if (L1 === L2 && a1 === a2 && b1 === b2) continue;
    const e = deltaE00(L1, a1, b1, L2, a2, b2);
    sum += e;
    if (e > jnd) over++;
  }
  const measuredShare = m > 0 ? measured / m : 0;
  if (measured === 0 || measuredShare < minShare) return { mean: null, overJnd: null, measuredShare };
  return { mean: sum / measured, overJnd: over / measured, measuredShare };
}
