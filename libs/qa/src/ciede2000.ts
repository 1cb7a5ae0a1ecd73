/**
 * CIEDE2000 colour difference ΔE00 (CIE 142-2001) with kL = kC = kH = 1, following the
 * implementation notes of Sharma, Wu and Dalal (Color Res. Appl. 30(1), 2005), whose 34 test pairs
 * it reproduces to 1e-4 (test/ciede2000.test.ts).
 *
 * {@link deltaE00} is the one every score uses: scalar arguments, no allocation, so a loop over
 * typed arrays stays allocation-free. It avoids trigonometry by working with hue vectors instead
 * of hue angles, and with a table for the rotation term (see the comments inside);
 * {@link deltaE00Reference} is the formula as the paper writes it, in degrees, used for the rare
 * inputs the vector form cannot take and by the tests as a second opinion.
 */

/** 25⁷, the constant of the chroma terms G and R_C. */
const POW25_7 = 6103515625;
const DEG = 180 / Math.PI;
const RAD = Math.PI / 180;
const COS30 = Math.cos(30 * RAD);
const SIN30 = Math.sin(30 * RAD);
const COS6 = Math.cos(6 * RAD);
const SIN6 = Math.sin(6 * RAD);
const COS63 = Math.cos(63 * RAD);
const SIN63 = Math.sin(63 * RAD);
const COS140 = Math.cos(140 * RAD);
const COS275 = Math.cos(275 * RAD);
const SIN275 = Math.sin(275 * RAD);

/**
 * sin(2Δθ) of the rotation term, Δθ = 30°·exp(−((h̄' − 275°)/25°)²), as a function of
 * t = tan((h̄' − 275°)/2), which the hue vector gives by one division (no atan2, exp or sin per
 * pair). Needed for h̄' in [140°, 360°): t in [tan(−67.5°), tan(42.5°)) ⊂ [T0, T0 + PIECES/INV_W).
 * Piecewise Chebyshev interpolation of degree 8 on pieces 1/64 wide, built here from the closed
 * form; within 1e-14 of it over the range (test/ciede2000.test.ts).
 */
const T0 = -2.5;
const INV_W = 64;
const PIECES = 224;
const DEGREE = 8;

/** sin(2Δθ) from the mean hue h̄' in degrees, as the paper writes it (the table's source; tests). */
export function rotationFactorExact(hueDeg: number): number {
  const x = (hueDeg - 275) / 25;
  return Math.sin(2 * 30 * Math.exp(-x * x) * RAD);
}
const ROT = ((): Float64Array => {
  const N = DEGREE + 1;
  const out = new Float64Array(PIECES * N);
  // Monomial coefficients of the Chebyshev polynomials T_0 … T_DEGREE.
  const T: number[][] = [[1], [0, 1]];
  for (let j = 2; j <= DEGREE; j++) T.push(Array.from({ length: j + 1 }, (_, i) => 2 * (T[j - 1][i - 1] ?? 0) - (T[j - 2][i] ?? 0)));
  for (let p = 0; p < PIECES; p++) {
    const a = T0 + p / INV_W;
    const f: number[] = [];
    for (let k = 0; k < N; k++) {
      const u = Math.cos((Math.PI * (k + 0.5)) / N);
      const t = a + ((u + 1) / 2) / INV_W;
      f.push(rotationFactorExact(275 + 2 * Math.atan(t) * DEG));
    }
    for (let j = 0; j < N; j++) {
      let c = 0;
      for (let k = 0; k < N; k++) c += f[k] * Math.cos((j * Math.PI * (k + 0.5)) / N);
      c *= (j === 0 ? 1 : 2) / N;
      for (let i = 0; i <= j; i++) out[p * N + i] += c * (T[j][i] ?? 0);
    }
  }
  return out;
})();

/** sin(2Δθ) at t = tan((h̄' − 275°)/2), from the table above (t is clamped into its range). */
export function rotationFactor(t: number): number {
  let x = (t - T0) * INV_W;
  if (!(x > 0)) x = 0;
  else if (x >= PIECES) x = PIECES - 1e-9;
  const p = x | 0;
  const u = 2 * (x - p) - 1;
  const o = p * (DEGREE + 1);
  let r = ROT[o + DEGREE];
  for (let k = DEGREE - 1; k >= 0; k--) r = r * u + ROT[o + k];
  return r;
}

/** h' in degrees, [0, 360); 0 for a neutral colour (Sharma eq. 4). */
function hueDeg(ap: number, b: number): number {
  if (ap === 0 && b === 0) return 0;
  const h = Math.atan2(b, ap) * DEG;
  return h < 0 ? h + 360 : h;
}

/** The last steps shared by both forms, from the mean hue h̄' in degrees and its cosine/sine. */
function finish(L1: number, L2: number, dC: number, dH: number, Cpm: number, hm: number, c: number, s: number): number {
  const dL = L2 - L1;
  const Lm = 0.5 * (L1 + L2) - 50;
  const Lm2 = Lm * Lm;
  const SL = 1 + (0.015 * Lm2) / Math.sqrt(20 + Lm2);
  const SC = 1 + 0.045 * Cpm;
  // cos(k·h̄ + φ) by the multiple-angle formulas from one cosine/sine pair.
  const c2 = c * c - s * s;
  const s2 = 2 * c * s;
  const c3 = c * c2 - s * s2;
  const s3 = s * c2 + c * s2;
  const c4 = c2 * c2 - s2 * s2;
  const s4 = 2 * c2 * s2;
  const T = 1 - 0.17 * (c * COS30 + s * SIN30) + 0.24 * c2 + 0.32 * (c3 * COS6 - s3 * SIN6) - 0.2 * (c4 * COS63 + s4 * SIN63);
  const SH = 1 + 0.015 * Cpm * T;
  const x = (hm - 275) / 25;
  const dTheta = 30 * Math.exp(-x * x);
  const Cpm2 = Cpm * Cpm;
  const Cpm7 = Cpm2 * Cpm2 * Cpm2 * Cpm;
  const RC = 2 * Math.sqrt(Cpm7 / (Cpm7 + POW25_7));
  const RT = -Math.sin(2 * dTheta * RAD) * RC;
  const l = dL / SL;
  const cc = dC / SC;
  const hh = dH / SH;
  const sq = l * l + cc * cc + hh * hh + RT * cc * hh;
  return Math.sqrt(Math.max(sq, 0));
}

/**
 * ΔE00 between two CIELAB colours (L* in [0,100], a*, b* unbounded). Symmetric; 0 for equal
 * colours; about 1 at a just-perceptible difference for large flat patches, 2.3 the value
 * commonly quoted as "just noticeable" for images.
 */
export function deltaE00(L1: number, a1: number, b1: number, L2: number, a2: number, b2: number): number {
  const C1 = Math.sqrt(a1 * a1 + b1 * b1);
  const C2 = Math.sqrt(a2 * a2 + b2 * b2);
  const Cm = 0.5 * (C1 + C2);
  const Cm2 = Cm * Cm;
  const Cm7 = Cm2 * Cm2 * Cm2 * Cm;
  const g = 1 + 0.5 * (1 - Math.sqrt(Cm7 / (Cm7 + POW25_7)));
  const ap1 = g * a1;
  const ap2 = g * a2;
  const Cp1 = Math.sqrt(ap1 * ap1 + b1 * b1);
  const Cp2 = Math.sqrt(ap2 * ap2 + b2 * b2);
  const prod = Cp1 * Cp2;
  // The paper's mean hue (the average, moved by 180° when the hues are more than 180° apart) is
  // the direction of the bisector of the two unit hue vectors, C1'C2'·(u1 + u2) = this:
  const sx = Cp2 * ap1 + Cp1 * ap2;
  const sy = Cp2 * b1 + Cp1 * b2;
  const norm = Math.sqrt(sx * sx + sy * sy);
  // |u1 + u2| = 2·cos(Δh'/2): near 0 only within ~1e-4° of opposite hues, where the bisector is
  // lost in rounding and the paper's case rules decide; neutral colours have no hue. Both rare.
  if (!(norm > 1e-6 * prod)) return deltaE00Reference(L1, a1, b1, L2, a2, b2);
  const dot = ap1 * ap2 + b1 * b2;
  const cross = ap1 * b2 - b1 * ap2;
  // ΔH' = 2·√(C1'C2')·sin(Δh'/2), so ΔH'² = 2(C1'C2' − a1'a2' − b1b2), with the sign of Δh' on the
  // short arc, which is the sign of the cross product of the two hue vectors.
  const dH2 = 2 * (prod - dot);
  const dH = (cross < 0 ? -1 : 1) * Math.sqrt(dH2 > 0 ? dH2 : 0);
  const c = sx / norm;
  const s = sy / norm;
  // The rest is the paper's, written out here (this is the inner loop of the flicker score).
  const Cpm = 0.5 * (Cp1 + Cp2);
  const dL = L2 - L1;
  const Lm = 0.5 * (L1 + L2) - 50;
  const Lm2 = Lm * Lm;
  const SL = 1 + (0.015 * Lm2) / Math.sqrt(20 + Lm2);
  const SC = 1 + 0.045 * Cpm;
  const c2 = c * c - s * s;
  const s2 = 2 * c * s;
  const c3 = c * c2 - s * s2;
  const s3 = s * c2 + c * s2;
  const c4 = c2 * c2 - s2 * s2;
  const s4 = 2 * c2 * s2;
  const T = 1 - 0.17 * (c * COS30 + s * SIN30) + 0.24 * c2 + 0.32 * (c3 * COS6 - s3 * SIN6) - 0.2 * (c4 * COS63 + s4 * SIN63);
  const SH = 1 + 0.015 * Cpm * T;
  const l = dL / SL;
  const cc = (Cp2 - Cp1) / SC;
  const hh = dH / SH;
  let sq = l * l + cc * cc + hh * hh;
  // The rotation term R_T = −sin(2Δθ)·R_C, Δθ = 30°·exp(−((h̄' − 275°)/25°)²), matters only for blue
  // hues: for h̄' in [0°, 140°) Δθ < 1e-11°, so it is skipped there. Elsewhere sin(2Δθ) comes from
  // t = tan((h̄' − 275°)/2): (c', s') is the hue vector turned by −275°, t = s'/(1 + c').
  if (!(s >= 0 && c > COS140)) {
    const cr = c * COS275 + s * SIN275;
    const sr = s * COS275 - c * SIN275;
    const Cpm2 = Cpm * Cpm;
    const Cpm7 = Cpm2 * Cpm2 * Cpm2 * Cpm;
    const RC = 2 * Math.sqrt(Cpm7 / (Cpm7 + POW25_7));
    sq -= rotationFactor(sr / (1 + cr)) * RC * cc * hh;
  }
  return Math.sqrt(Math.max(sq, 0));
}

/**
 * ΔE00 as Sharma et al. write it (hue angles in degrees, their case rules for the mean hue and
 * the hue difference). Slower than {@link deltaE00}; same results.
 */
export function deltaE00Reference(L1: number, a1: number, b1: number, L2: number, a2: number, b2: number): number {
  const C1 = Math.sqrt(a1 * a1 + b1 * b1);
  const C2 = Math.sqrt(a2 * a2 + b2 * b2);
  const Cm = 0.5 * (C1 + C2);
  const Cm7 = Cm ** 7;
  const G = 0.5 * (1 - Math.sqrt(Cm7 / (Cm7 + POW25_7)));
  const ap1 = (1 + G) * a1;
  const ap2 = (1 + G) * a2;
  const Cp1 = Math.sqrt(ap1 * ap1 + b1 * b1);
  const Cp2 = Math.sqrt(ap2 * ap2 + b2 * b2);
  const h1 = hueDeg(ap1, b1);
  const h2 = hueDeg(ap2, b2);
  const prod = Cp1 * Cp2;
  let dh = 0;
  if (prod !== 0) {
    dh = h2 - h1;
    if (dh > 180) dh -= 360;
    else if (dh < -180) dh += 360;
  }
  const dH = 2 * Math.sqrt(prod) * Math.sin((dh / 2) * RAD);
  let hm = h1 + h2;
  if (prod !== 0) {
    if (Math.abs(h1 - h2) <= 180) hm /= 2;
    else if (hm < 360) hm = (hm + 360) / 2;
    else hm = (hm - 360) / 2;
  }
  return finish(L1, L2, Cp2 - Cp1, dH, 0.5 * (Cp1 + Cp2), hm, Math.cos(hm * RAD), Math.sin(hm * RAD));
}
