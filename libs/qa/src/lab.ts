/**
 * sRGB → CIELAB (D65, 2° observer) for whole images, into Float32Array planes.
 *
 * sRGB companding per IEC 61966-2-1; the linear-RGB → XYZ matrix is the sRGB one with D65 white
 * (Xn, Yn, Zn) = (0.95047, 1, 1.08883), the sums of its rows, so sRGB white is exactly L* = 100,
 * a* = b* = 0. CIE's exact constants ε = 216/24389 and κ = 24389/27 keep f(t) continuous.
 *
 * Both non-linear steps go through tables with linear interpolation (4,096 intervals for the sRGB
 * curve, 16,384 for the cube root): within 2e-4 in L*, a*, b* of the closed form (test/lab.test.ts),
 * at a fraction of the cost of `Math.pow` / `Math.cbrt` per sample.
 */
import type { Planar } from '@celfarm/pipeline';

/** A CIELAB image: one plane per component, H·W each, row-major. L* in [0,100]. */
export interface LabImage {
  readonly width: number;
  readonly height: number;
  readonly L: Float32Array;
  readonly a: Float32Array;
  readonly b: Float32Array;
}

const XN = 0.95047;
const ZN = 1.08883;
// sRGB (linear) → XYZ, rows pre-divided by the white point so X/Xn, Y/Yn, Z/Zn come out directly.
const M00 = 0.4124564 / XN;
const M01 = 0.3575761 / XN;
const M02 = 0.1804375 / XN;
const M10 = 0.2126729;
const M11 = 0.7151522;
const M12 = 0.072175;
const M20 = 0.0193339 / ZN;
const M21 = 0.119192 / ZN;
const M22 = 0.9503041 / ZN;
const EPS = 216 / 24389;
const KAPPA = 24389 / 27;

// The exact inverse of the (white-normalised) matrix above, so Lab → sRGB → Lab returns to itself.
const XYZ_TO_RGB = ((): number[] => {
  const [a, b, c, d, e, f, g, h, k] = [M00, M01, M02, M10, M11, M12, M20, M21, M22];
  const det = a * (e * k - f * h) - b * (d * k - f * g) + c * (d * h - e * g);
  return [e * k - f * h, c * h - b * k, b * f - c * e, f * g - d * k, a * k - c * g, c * d - a * f, d * h - e * g, b * g - a * h, a * e - b * d].map((v) => v / det);
})();

/** Relative luminance Y (Yn = 1) of a linear-light sRGB colour. */
export const luminance = (r: number, g: number, b: number): number => M10 * r + M11 * g + M12 * b;

/** Y of the grey with lightness L* (the inverse of L* = 116 f(Y) − 16). */
export function luminanceOfL(L: number): number {
  const fy = (L + 16) / 116;
  const y = fy * fy * fy;
  return y > EPS ? y : L / KAPPA;
}

/** sRGB companding inverse (electro-optical transfer) of a unit-range value. */
export function srgbToLinear(u: number): number {
  return u <= 0.04045 ? u / 12.92 : ((u + 0.055) / 1.055) ** 2.4;
}

/** CIE f(t) of the L*a*b* definition. */
export function labF(t: number): number {
  return t > EPS ? Math.cbrt(t) : (KAPPA * t + 16) / 116;
}

const LIN_N = 4096;
const LIN = new Float64Array(LIN_N + 2);
for (let i = 0; i <= LIN_N + 1; i++) LIN[i] = srgbToLinear(Math.min(i, LIN_N) / LIN_N);
// X/Xn etc. stay in [0, 1] for clamped input (rows sum to 1); the table reaches a little past it.
const F_N = 16384;
const F_MAX = 1.001;
const F_SCALE = F_N / F_MAX;
const FT = new Float64Array(F_N + 2);
for (let i = 0; i <= F_N + 1; i++) FT[i] = labF((i / F_N) * F_MAX);

/** Table lookup of the sRGB curve; u is clamped to [0,1] (NaN → 0). */
function lin(u: number): number {
  const x = (u > 1 ? 1 : u >= 0 ? u : 0) * LIN_N;
  const i = x | 0;
  return LIN[i] + (LIN[i + 1] - LIN[i]) * (x - i);
}

/** A pipeline sample in [−1,1] → linear-light sRGB in [0,1] (clamped; NaN → 0). */
export function linearChannel(x: number): number {
  return lin((x + 1) * 0.5);
}

/**
 * Relative luminance Y (Yn = 1) of pixel `i` of a planar [−1,1] image whose channels start at 0,
 * `o1` and `o2` (all 0 for grey): `luminance` of the three `linearChannel`s, bit for bit, with the
 * table lookups written out (line fidelity calls it once per line pixel).
 */
export function pixelLuminance(d: Float32Array, i: number, o1: number, o2: number): number {
  let u = (d[i] + 1) * 0.5;
  let x = (u > 1 ? 1 : u >= 0 ? u : 0) * LIN_N;
  let k = x | 0;
  const r = LIN[k] + (LIN[k + 1] - LIN[k]) * (x - k);
  u = (d[o1 + i] + 1) * 0.5;
  x = (u > 1 ? 1 : u >= 0 ? u : 0) * LIN_N;
  k = x | 0;
  const g = LIN[k] + (LIN[k + 1] - LIN[k]) * (x - k);
  u = (d[o2 + i] + 1) * 0.5;
  x = (u > 1 ? 1 : u >= 0 ? u : 0) * LIN_N;
  k = x | 0;
  const b = LIN[k] + (LIN[k + 1] - LIN[k]) * (x - k);
  return M10 * r + M11 * g + M12 * b;
}

/**
 * L* of one colour given as float32 samples in [−1,1] (a cell mean, as {@link labKernel} reads it
 * with scale 0.5 and bias 0.5), rounded to float32: the L* labKernel stores, bit for bit.
 */
export function lightnessOfMean(rm: number, gm: number, bm: number): number {
  let u = rm * 0.5 + 0.5;
  let x = (u > 1 ? 1 : u >= 0 ? u : 0) * LIN_N;
  let k = x | 0;
  const r = LIN[k] + (LIN[k + 1] - LIN[k]) * (x - k);
  u = gm * 0.5 + 0.5;
  x = (u > 1 ? 1 : u >= 0 ? u : 0) * LIN_N;
  k = x | 0;
  const g = LIN[k] + (LIN[k + 1] - LIN[k]) * (x - k);
  u = bm * 0.5 + 0.5;
  x = (u > 1 ? 1 : u >= 0 ? u : 0) * LIN_N;
  k = x | 0;
  const b = LIN[k] + (LIN[k + 1] - LIN[k]) * (x - k);
  x = (M10 * r + M11 * g + M12 * b) * F_SCALE;
  k = x | 0;
  return Math.fround(116 * (FT[k] + (FT[k + 1] - FT[k]) * (x - k)) - 16);
}

/**
 * The conversion loop, with both table lookups written out (this loop is most of the cost of the
 * colour scores, and V8 inlines less than one would hope): `count` colours whose sRGB-encoded
 * channels are `src[oR + i]·scale + bias` (likewise oG, oB), clamped to [0,1], NaN as 0 → Lab at
 * `out[outOffset + i]`.
 */
export function labKernel(
  src: Float32Array,
  oR: number,
  oG: number,
  oB: number,
  count: number,
  scale: number,
  bias: number,
  out: LabImage,
  outOffset: number,
): void {
  const Lp = out.L;
  const ap = out.a;
  const bp = out.b;
  for (let i = 0; i < count; i++) {
    let u = src[oR + i] * scale + bias;
    let x = (u > 1 ? 1 : u >= 0 ? u : 0) * LIN_N;
    let k = x | 0;
    const r = LIN[k] + (LIN[k + 1] - LIN[k]) * (x - k);
    u = src[oG + i] * scale + bias;
    x = (u > 1 ? 1 : u >= 0 ? u : 0) * LIN_N;
    k = x | 0;
    const g = LIN[k] + (LIN[k + 1] - LIN[k]) * (x - k);
    u = src[oB + i] * scale + bias;
    x = (u > 1 ? 1 : u >= 0 ? u : 0) * LIN_N;
    k = x | 0;
    const b = LIN[k] + (LIN[k + 1] - LIN[k]) * (x - k);
    // X/Xn, Y, Z/Zn are in [0, 1] for clamped input, inside the table.
    x = (M00 * r + M01 * g + M02 * b) * F_SCALE;
    k = x | 0;
    const fx = FT[k] + (FT[k + 1] - FT[k]) * (x - k);
    x = (M10 * r + M11 * g + M12 * b) * F_SCALE;
    k = x | 0;
    const fy = FT[k] + (FT[k + 1] - FT[k]) * (x - k);
    x = (M20 * r + M21 * g + M22 * b) * F_SCALE;
    k = x | 0;
    const fz = FT[k] + (FT[k + 1] - FT[k]) * (x - k);
    const o = outOffset + i;
    Lp[o] = 116 * fy - 16;
    ap[o] = 500 * (fx - fy);
    bp[o] = 200 * (fy - fz);
  }
}

/** An empty (all zero) Lab image of the given size. */
export function labImage(width: number, height: number): LabImage {
  const n = width * height;
  return { width, height, L: new Float32Array(n), a: new Float32Array(n), b: new Float32Array(n) };
}

/**
 * A pipeline image (planar, values in [−1,1] as decoded by `decodeImage` and produced by the
 * pipeline; 3 channels RGB, or 1 channel grey) → CIELAB. Values outside [−1,1] are clamped, NaN
 * counts as black.
 */
export function planarToLab(img: Planar): LabImage {
  const { channels: C, height: H, width: W } = img;
  if (C !== 3 && C !== 1) throw new RangeError(`planarToLab needs 1 or 3 channels, got ${C}`);
  const n = H * W;
  const out = labImage(W, H);
  labKernel(img.data, 0, C === 3 ? n : 0, C === 3 ? 2 * n : 0, n, 0.5, 0.5, out, 0);
  return out;
}

/** Interleaved 8-bit RGB (HWC, as `toRgb8` writes and sharp's raw output reads) → CIELAB. */
export function rgb8ToLab(rgb8: Uint8Array, width: number, height: number): LabImage {
  const n = width * height;
  if (rgb8.length !== n * 3) throw new RangeError(`expected ${n * 3} bytes for ${width}×${height} RGB, got ${rgb8.length}`);
  const planes = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    planes[i] = rgb8[3 * i];
    planes[n + i] = rgb8[3 * i + 1];
    planes[2 * n + i] = rgb8[3 * i + 2];
  }
  const out = labImage(width, height);
  labKernel(planes, 0, n, 2 * n, n, 1 / 255, 0, out, 0);
  return out;
}

/** One sRGB colour, components in [0,1], → [L*, a*, b*] by the closed form (no tables). */
export function srgbToLab(r: number, g: number, b: number): [number, number, number] {
  const R = srgbToLinear(r);
  const G = srgbToLinear(g);
  const B = srgbToLinear(b);
  const fx = labF(M00 * R + M01 * G + M02 * B);
  const fy = labF(M10 * R + M11 * G + M12 * B);
  const fz = labF(M20 * R + M21 * G + M22 * B);
  return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)];
}

/** One CIELAB colour → sRGB in [0,1] (clamped), the inverse of {@link srgbToLab} inside the gamut. */
export function labToSrgb(L: number, a: number, b: number): [number, number, number] {
  const fy = (L + 16) / 116;
  const fx = fy + a / 500;
  const fz = fy - b / 200;
  const inv = (t: number): number => (t ** 3 > EPS ? t ** 3 : (116 * t - 16) / KAPPA);
  const x = inv(fx);
  const y = inv(fy);
  const z = inv(fz);
  const [i0, i1, i2, i3, i4, i5, i6, i7, i8] = XYZ_TO_RGB;
  const R = i0 * x + i1 * y + i2 * z;
  const G = i3 * x + i4 * y + i5 * z;
  const B = i6 * x + i7 * y + i8 * z;
  const enc = (v: number): number => {
    const c = v <= 0.0031308 ? 12.92 * v : 1.055 * v ** (1 / 2.4) - 0.055;
    return c > 1 ? 1 : c >= 0 ? c : 0;
  };
  return [enc(R), enc(G), enc(B)];
}
