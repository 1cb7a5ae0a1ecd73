/**
 * Palette lock: pulls an output's flat colour regions onto a target palette (the reference's, or
 * an approved frame's), keeping its lines and its shading.
 *
 * 1. The output's own dominant colours (extractPalette, on every pixel that is not a line of the
 *    sketch): the regions the model painted.
 * 2. Each dominant colour is matched to the nearest target colour by ΔE00; a match farther than
 *    `maxDeltaE` is left alone (a colour the reference does not have — a new prop, a highlight —
 *    is not forced onto a wrong one).
 * 3. Every non-line pixel joins its nearest dominant colour (Euclidean Lab, as the clustering
 *    does) and moves by that colour's shift, `target − dominant`, in Lab: a region's shading
 *    (its variation around its mean) moves with it, the lines of the sketch do not move at all.
 *
 * Deterministic (the palette seeding is), a pure function of the output, the lines and the target,
 * so the same frame locks the same way on every worker. Cost: one Lab conversion and one
 * assignment pass over the pixels (K ≤ 8 distances each), one sRGB conversion of the pixels that
 * move.
 */
import type { Planar } from '@celfarm/pipeline';
import { deltaE00 } from './ciede2000.ts';
import { labToSrgb, planarToLab } from './lab.ts';
import { extractPalette, type Palette, type PaletteEntry } from './palette.ts';

/** Options of {@link lockPalette}. */
export interface PaletteLockOptions {
  /** Dominant colours taken from the output. Default 8. */
  colours?: number;
  /** Farthest a dominant colour may be from its target (ΔE00) to be moved. Default 20. */
  maxDeltaE?: number;
}

/** One dominant colour of the output and where it went. */
export interface PaletteShift {
  from: PaletteEntry;
  /** The target colour it moved to, or null when none lay within `maxDeltaE`. */
  to: PaletteEntry | null;
  deltaE: number;
}

export interface PaletteLockResult {
  /** The locked output (a new image; the input is not changed). */
  image: Planar;
  shifts: PaletteShift[];
  /** Share of the pixels that moved. */
  moved: number;
}

/**
 * `output`: the rendered frame, planar RGB in [−1, 1]. `lines`: 1 on the sketch's line pixels
 * (libs/qa lineMap of the sketch fitted to the output), left as they are; null: none. `target`:
 * the palette to lock to.
 */
export function lockPalette(output: Planar, lines: Uint8Array | null, target: Palette, options: PaletteLockOptions = {}): PaletteLockResult {
  const { width: W, height: H, channels: C } = output;
  if (C !== 3) throw new RangeError(`lockPalette needs an RGB image, got ${C} channels`);
  const n = W * H;
  if (lines && lines.length !== n) throw new RangeError(`lines has ${lines.length} pixels, the output ${n}`);
  const maxDeltaE = options.maxDeltaE ?? 20;
  const image: Planar = { ...output, data: Float32Array.from(output.data) };
  const fill = new Uint8Array(n);
  for (let i = 0; i < n; i++) fill[i] = lines?.[i] ? 0 : 1;
  const lab = planarToLab(output);
  const own = extractPalette(lab, fill, { colours: options.colours ?? 8 });
  if (own.entries.length === 0 || target.entries.length === 0) return { image, shifts: [], moved: 0 };

  const shifts: PaletteShift[] = own.entries.map((from) => {
    let to: PaletteEntry | null = null;
    let best = Infinity;
    for (const t of target.entries) {
      const d = deltaE00(from.L, from.a, from.b, t.L, t.a, t.b);
      if (d < best) {
        best = d;
        to = t;
      }
    }
    return { from, to: best <= maxDeltaE ? to : null, deltaE: best };
  });

  const K = shifts.length;
  const cL = new Float64Array(K);
  const cA = new Float64Array(K);
  const cB = new Float64Array(K);
  shifts.forEach((s, k) => {
    cL[k] = s.from.L;
    cA[k] = s.from.a;
    cB[k] = s.from.b;
  });
  const d = image.data;
  let moved = 0;
  for (let i = 0; i < n; i++) {
    if (!fill[i]) continue;
    const L = lab.L[i]!;
    const a = lab.a[i]!;
    const b = lab.b[i]!;
    let k = 0;
    let bestD = Infinity;
    for (let j = 0; j < K; j++) {
      const dL = L - cL[j]!;
      const dA = a - cA[j]!;
      const dB = b - cB[j]!;
      const dist = dL * dL + dA * dA + dB * dB;
      if (dist < bestD) {
        bestD = dist;
        k = j;
      }
    }
    const s = shifts[k]!;
    if (!s.to) continue;
    const [r, g, bl] = labToSrgb(L + s.to.L - s.from.L, a + s.to.a - s.from.a, b + s.to.b - s.from.b);
    d[i] = 2 * r - 1;
    d[n + i] = 2 * g - 1;
    d[2 * n + i] = 2 * bl - 1;
    moved++;
  }
  return { image, shifts, moved: moved / n };
}

/**
 * The palette an approved frame's output locks later frames to: its dominant colours off the
 * sketch's lines (as {@link lockPalette} finds an output's).
 */
export function framePalette(output: Planar, lines: Uint8Array | null, colours = 12): Palette {
  const n = output.width * output.height;
  const fill = new Uint8Array(n);
  for (let i = 0; i < n; i++) fill[i] = lines?.[i] ? 0 : 1;
  return extractPalette(planarToLab(output), fill, { colours });
}
