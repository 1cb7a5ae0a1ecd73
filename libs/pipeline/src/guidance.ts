/**
 * Classifier-free guidance (contract §3): one batched UNet call over [C, U_ref, U_sk] blocks and
 * the combination of their outputs. Pure functions over flat arrays.
 */

/** C = full conditions; U_ref = zero cross-attention context; U_sk = blank-sketch hints. */
export type Branch = 'C' | 'U_ref' | 'U_sk';

/** The batch layout for the scales: a scale counts as on only when > 1. */
export function guidanceLayout(gsRef: number, gsSketch: number): Branch[] {
  const layout: Branch[] = ['C'];
  if (gsRef > 1) layout.push('U_ref');
  if (gsSketch > 1) layout.push('U_sk');
  return layout;
}

/**
 * Combines model outputs laid out as `layout` blocks of `per` values each (one block = all
 * images of the request). Returns one block:
 * - [C]: C; [C, U_ref]: U_ref + g_r(C − U_ref); [C, U_sk]: U_sk + g_s(C − U_sk);
 * - [C, U_ref, U_sk]: ½[(U_ref + g_r(C − U_ref)) + (U_sk + g_s(C − U_sk))].
 * Applying it to raw outputs equals applying it to denoised estimates (shared c_skip/c_out).
 */
export function combineGuidance(
  out: Float32Array,
  layout: Branch[],
  per: number,
  gsRef: number,
  gsSketch: number,
): Float32Array {
  const block = (b: Branch) => {
    const i = layout.indexOf(b);
    return i < 0 ? undefined : out.subarray(i * per, (i + 1) * per);
  };
  const c = block('C')!;
  const ur = block('U_ref');
  const us = block('U_sk');
  const res = new Float32Array(per);
  for (let i = 0; i < per; i++) {
    const C = c[i]!;
    if (ur && us) {
      res[i] = 0.5 * (ur[i]! + gsRef * (C - ur[i]!) + (us[i]! + gsSketch * (C - us[i]!)));
    } else if (ur) res[i] = ur[i]! + gsRef * (C - ur[i]!);
    else if (us) res[i] = us[i]! + gsSketch * (C - us[i]!);
    else res[i] = C;
  }
  return res;
}

/** The relative step tr = 1 − t/999 of a UNet call: ≈0 at the first, 1 at t = 0. */
export const relativeStep = (t: number): number => 1 - t / 999;

/**
 * Whether the reference guides this UNet call. tr = 1 − t/999 rises from ≈0 to 1 over sampling;
 * outside [start, end] the cross-attention context of every entry becomes one zero token.
 * Evaluated per call and not sticky (the app's write-back quirk is not reproduced), and it works
 * with split attention because both context inputs get the one-token zeros.
 */
export function referenceActive(t: number, start: number, end: number): boolean {
  const tr = relativeStep(t);
  return tr >= start && tr <= end;
}
