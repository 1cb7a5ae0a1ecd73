/**
 * Dominant colours of an image in CIELAB: weighted k-means over a Lab histogram, seeded
 * deterministically.
 *
 * 1. Histogram: every counted pixel falls in a cube of `binSize` Lab units; a bin keeps its pixel
 *    count and the exact mean of its pixels (so flat colours stay exact, whatever the bin size).
 * 2. Seeding (deterministic k-means++): the first centre is the most populated bin; each next one
 *    is the bin with the largest count × (squared distance to its nearest centre) — the argmax of
 *    the k-means++ sampling weight instead of a random draw. Seeding stops early when every bin
 *    already sits on a centre, so an image of 3 flat colours has a palette of 3.
 * 3. Lloyd iterations on the bins (weights = counts, Euclidean ΔE76 distances, as k-means in Lab
 *    is usually done), until no bin changes cluster or `iterations` is reached. Clusters that
 *    empty are dropped.
 *
 * Each entry is a cluster's mean colour and its share of the counted pixels; entries are sorted by
 * share, largest first. Cost: one pass over the pixels plus k × bins × iterations distance
 * computations (bins are a few thousand for a character; far fewer than pixels).
 */
import type { LabImage } from './lab.ts';

/** One dominant colour. */
export interface PaletteEntry {
  L: number;
  a: number;
  b: number;
  /** Share of the counted pixels in this cluster, (0, 1]; the shares of a palette sum to 1. */
  share: number;
}

/** Dominant colours, largest share first. */
export interface Palette {
  entries: PaletteEntry[];
  /** Pixels (grid cells) the palette was computed from: inside the mask, or all. */
  pixels: number;
}

/** Options of {@link extractPalette}. */
export interface PaletteOptions {
  /** Most colours to find (k). Default 8. */
  colours?: number;
  /** Lloyd iterations at most. Default 30. */
  iterations?: number;
  /** Edge of a histogram bin in Lab units. Default 4. */
  binSize?: number;
}

// a* and b* of sRGB colours lie within ±128; anything further is clamped into the edge bins.
const AB_OFFSET = 128;

/** The histogram's bins, all zero between calls (one call at a time: no re-entry). */
let scratch: { count: Float64Array; sums: Float64Array } | null = null;

const clampIdx = (v: number, max: number): number => (v < 0 ? 0 : v > max ? max : v | 0);

/**
 * Dominant colours of `lab`, counting only the pixels where `mask` is 1 (a raster of the same
 * size) or all of them. An empty selection gives an empty palette.
 */
export function extractPalette(lab: LabImage, mask: Uint8Array | null, options: PaletteOptions = {}): Palette {
  const k = options.colours ?? 8;
  const iterations = options.iterations ?? 30;
  const bin = options.binSize ?? 4;
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`colours must be a positive integer, got ${k}`);
  if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError(`iterations must be a positive integer, got ${iterations}`);
  if (!(bin > 0)) throw new RangeError(`binSize must be positive, got ${bin}`);
  const n = lab.width * lab.height;
  if (mask && mask.length !== n) throw new RangeError(`mask has ${mask.length} cells, image has ${n}`);

  // 1. histogram
  const nL = Math.ceil(100 / bin) + 1;
  const nA = Math.ceil((2 * AB_OFFSET) / bin) + 1;
  const bins = nL * nA * nA;
  // The bin arrays (3.5 MB with the default bin size) are kept between calls and cleared after
  // use, bin by bin: zeroing and collecting them per call cost more than the histogram itself.
  if (!scratch || scratch.count.length !== bins) scratch = { count: new Float64Array(bins), sums: new Float64Array(3 * bins) };
  const { count, sums } = scratch;
  const used: number[] = [];
  const inv = 1 / bin;
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (mask && !mask[i]) continue;
    const L = lab.L[i];
    const A = lab.a[i];
    const B = lab.b[i];
    const key = (clampIdx(L * inv, nL - 1) * nA + clampIdx((A + AB_OFFSET) * inv, nA - 1)) * nA + clampIdx((B + AB_OFFSET) * inv, nA - 1);
    if (count[key] === 0) used.push(key);
    count[key]++;
    sums[3 * key] += L;
    sums[3 * key + 1] += A;
    sums[3 * key + 2] += B;
    total++;
  }
  if (total === 0) return { entries: [], pixels: 0 };
  used.sort((x, y) => x - y);
  const P = used.length;
  const pw = new Float64Array(P);
  const pt = new Float64Array(3 * P);
  for (let p = 0; p < P; p++) {
    const key = used[p];
    const w = count[key];
    pw[p] = w;
    pt[3 * p] = sums[3 * key] / w;
    pt[3 * p + 1] = sums[3 * key + 1] / w;
    pt[3 * p + 2] = sums[3 * key + 2] / w;
    count[key] = 0;
    sums[3 * key] = 0;
    sums[3 * key + 1] = 0;
    sums[3 * key + 2] = 0;
  }

  // 2. deterministic seeding
  const centres: number[] = [];
  const nearest = new Float64Array(P).fill(Infinity);
  let first = 0;
  for (let p = 1; p < P; p++) if (pw[p] > pw[first]) first = p;
  let next = first;
  while (centres.length < 3 * k) {
    const cL = pt[3 * next];
    const cA = pt[3 * next + 1];
    const cB = pt[3 * next + 2];
    centres.push(cL, cA, cB);
    let best = -1;
    let bestScore = 0;
    for (let p = 0; p < P; p++) {
      const dL = pt[3 * p] - cL;
      const dA = pt[3 * p + 1] - cA;
      const dB = pt[3 * p + 2] - cB;
      const d = dL * dL + dA * dA + dB * dB;
      if (d < nearest[p]) nearest[p] = d;
      const score = pw[p] * nearest[p];
      if (score > bestScore) {
        bestScore = score;
        best = p;
      }
    }
    if (best < 0) break;
    next = best;
  }

  // 3. Lloyd
  const K = centres.length / 3;
  const c = Float64Array.from(centres);
  const assign = new Int32Array(P).fill(-1);
  const cw = new Float64Array(K);
  const cs = new Float64Array(3 * K);
  for (let it = 0; it < iterations; it++) {
    let changed = 0;
    for (let p = 0; p < P; p++) {
      let bestK = 0;
      let bestD = Infinity;
      for (let j = 0; j < K; j++) {
        if (c[3 * j] !== c[3 * j]) continue; // emptied cluster (NaN centre)
        const dL = pt[3 * p] - c[3 * j];
        const dA = pt[3 * p + 1] - c[3 * j + 1];
        const dB = pt[3 * p + 2] - c[3 * j + 2];
        const d = dL * dL + dA * dA + dB * dB;
        if (d < bestD) {
          bestD = d;
          bestK = j;
        }
      }
      if (assign[p] !== bestK) {
        assign[p] = bestK;
        changed++;
      }
    }
    cw.fill(0);
    cs.fill(0);
    for (let p = 0; p < P; p++) {
      const j = assign[p];
      const w = pw[p];
      cw[j] += w;
      cs[3 * j] += w * pt[3 * p];
      cs[3 * j + 1] += w * pt[3 * p + 1];
      cs[3 * j + 2] += w * pt[3 * p + 2];
    }
    for (let j = 0; j < K; j++) {
      const w = cw[j];
      c[3 * j] = w > 0 ? cs[3 * j] / w : NaN;
      c[3 * j + 1] = w > 0 ? cs[3 * j + 1] / w : NaN;
      c[3 * j + 2] = w > 0 ? cs[3 * j + 2] / w : NaN;
    }
    if (changed === 0) break;
  }

  const entries: PaletteEntry[] = [];
  for (let j = 0; j < K; j++) {
    if (cw[j] > 0) entries.push({ L: c[3 * j], a: c[3 * j + 1], b: c[3 * j + 2], share: cw[j] / total });
  }
  entries.sort((x, y) => y.share - x.share);
  return { entries, pixels: total };
}
