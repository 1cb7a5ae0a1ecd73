/**
 * `diffuser_pndm`: diffusers' PNDMScheduler as the official app configures it
 * (`configs/scheduler_cfgs/pndm.yaml`: scaled_linear, steps_offset 1, leading spacing; the
 * defaults skip_prk_steps = False and set_alpha_to_one = False; v_prediction for v2), written from
 * the algorithm of diffusers' `scheduling_pndm.py` (Liu et al. 2022, "Pseudo Numerical Methods for
 * Diffusion Models", F-PNDM).
 *
 * It is a method on the discrete DDPM schedule, so it only runs on sigmas that are values of the
 * σ table (what `planSampling` gives it): step k goes from timestep t_k to t_{k+1}, where σ_n may be
 * a table value (the app: ā_0, because set_alpha_to_one is off) or 0 (ā = 1).
 * - The first three steps are pseudo Runge–Kutta blocks of four model calls each, at timesteps
 *   T, L + h, L + h, L (T = t_k, L = t_{k+1}, h = ⌊(T − L)/2⌋); every call's transfer starts from the
 *   block's first sample, to T − h, L + h, L and L, the last one with the output mix
 *   m₀/6 + m₁/3 + m₂/3 + m₃/6. (With an odd spacing the first transfer lands on T − h, one timestep
 *   above the L + h the next call is told: diffusers' arithmetic, kept.)
 * - The remaining steps are linear multistep (Adams–Bashforth 4) on the model outputs:
 *   (55e₀ − 59e₁ + 37e₂ − 9e₃)/24, e₀ the current output, e₁…e₃ the outputs at the blocks' first
 *   calls and the later steps. So n steps cost n + 9 model calls (20 steps: 29).
 * - Each transfer is PNDM's formula (9) in VP form: x' = √(ā'/ā)·x − (ā' − ā)·ε/(ā·√(1 − ā') +
 *   √(ā(1 − ā)ā')), ā = ā[t] of the transfer's start, ā' that of its end. With v-prediction the mixed
 *   output m is turned into ε = √ā·m + √(1 − ā)·x with the transfer's start sample and ā: diffusers
 *   mixes raw v outputs, not ε, and that is what the app computes.
 *
 * The state is kept in VP form as diffusers keeps it (x_VP = x_VE/√(σ² + 1)); the denoiser gets the
 * VE sample at the table σ of the call's timestep (so the UNet input x_VE·c_in(σ) is the VP sample
 * and σ→t(σ) is the integer timestep exactly), and the raw output (v or ε, `opts.prediction`) is
 * recovered from D = c_skip·x + c_out·m. The result is VE at σ_n; the caller decodes x·c_in(σ_n),
 * which is the VP sample the app decodes.
 */
import { allocLike, callDenoise, checkSigmas, type Denoiser, type DenoiseResult, type SamplerOptions } from './sampler-core.ts';
import { discreteSchedule, modelScalings, sigmaToT, type Prediction, type SampleArray } from './schedule.ts';

/** PNDM order: three Runge–Kutta blocks give the three past outputs its multistep needs. */
const PRK_STEPS = 3;
/** Fewest steps `pndm` (and diffusers' PNDM with its Runge–Kutta blocks) can run. */
export const PNDM_MIN_STEPS = PRK_STEPS + 1;

/** A point of the discrete schedule: a timestep index, or −1 for σ = 0 (ā = 1). */
type Point = number;

/** The timestep of a table σ (−1 for 0); throws for anything off the table. */
function pointOf(sigma: number, k: number): Point {
  if (sigma === 0) return -1;
  const t = sigmaToT(sigma);
  if (!Number.isInteger(t) || discreteSchedule().sigmas[t] !== sigma) {
    throw new RangeError(`pndm: runs on the discrete schedule; sigmas[${k}] = ${sigma} is not a value of the σ table`);
  }
  return t;
}

const alphaCumprodAt = (p: Point): number => (p < 0 ? 1 : discreteSchedule().alphasCumprod[p]);

/**
 * diffusers `PNDMScheduler._get_prev_sample` (formula (9)), elementwise in float64, stored in the
 * array's precision: the VP sample at `prev` from the VP `sample` at `t` and the model output `m`.
 */
function transfer<T extends SampleArray>(sample: T, t: Point, prev: Point, m: Float64Array, prediction: Prediction): T {
  const alphaProdT = alphaCumprodAt(t);
  const alphaProdTPrev = alphaCumprodAt(prev);
  const betaProdT = 1 - alphaProdT;
  const betaProdTPrev = 1 - alphaProdTPrev;
  const sampleCoeff = (alphaProdTPrev / alphaProdT) ** 0.5;
  const denom = alphaProdT * betaProdTPrev ** 0.5 + (alphaProdT * betaProdT * alphaProdTPrev) ** 0.5;
  const epsCoeff = alphaProdTPrev - alphaProdT;
  const out = allocLike(sample);
  for (let j = 0; j < out.length; j++) {
    const eps = prediction === 'v' ? alphaProdT ** 0.5 * m[j] + betaProdT ** 0.5 * sample[j] : m[j];
    out[j] = sampleCoeff * sample[j] - (epsCoeff * eps) / denom;
  }
  return out;
}

/** x_VP → x_VE at σ (same array type). */
function toVe<T extends SampleArray>(xVp: T, sigma: number): T {
  const scale = Math.sqrt(sigma * sigma + 1);
  const out = allocLike(xVp);
  for (let j = 0; j < out.length; j++) out[j] = xVp[j] * scale;
  return out;
}

/**
 * diffusers PNDMScheduler with PRK steps (skip_prk_steps = False), see the module comment.
 * `sigmas`: σ table values σ_0 > … > σ_{n−1} and σ_n (a table value or 0), n ≥ 4 (diffusers cannot
 * set up fewer: its three Runge–Kutta blocks need four timesteps). `x` is the VE sample at σ_0.
 * The denoiser is called n + 9 times; `i` is the step (a Runge–Kutta block's four calls share it);
 * `onStep` runs once per step with the VE state at σ_{i+1}.
 */
export async function pndm<T extends SampleArray>(
  denoise: Denoiser<T>,
  x: T,
  sigmas: ArrayLike<number>,
  opts: SamplerOptions = {},
): Promise<T> {
  const n = checkSigmas(sigmas);
  if (n < PNDM_MIN_STEPS) throw new RangeError(`pndm: needs at least ${PNDM_MIN_STEPS} steps (three Runge–Kutta blocks, then multistep), got ${n}`);
  const prediction = opts.prediction ?? 'v';
  // checkSigmas lets only σ_n be 0, so every step starts, and every Runge–Kutta block ends, on the table.
  const points = Array.from({ length: n + 1 }, (_, k) => pointOf(sigmas[k], k));
  const table = discreteSchedule().sigmas;

  /** The raw model output (v or ε) at timestep t for the VP sample, and the denoiser's D. */
  const model = async (xVp: T, t: Point, i: number): Promise<{ m: Float64Array; denoised: DenoiseResult }> => {
    const sigma = table[t];
    const xVe = toVe(xVp, sigma);
    const denoised = await callDenoise(denoise, xVe, sigma, i, opts.signal);
    const m = new Float64Array(xVe.length);
    if (prediction === 'v') {
      const { cSkip, cOut } = modelScalings(sigma, 'v');
      for (let j = 0; j < m.length; j++) m[j] = (denoised[j] - cSkip * xVe[j]) / cOut;
    } else {
      for (let j = 0; j < m.length; j++) m[j] = (xVe[j] - denoised[j]) / sigma;
    }
    return { m, denoised };
  };

  // The VP state diffusers keeps: x_VP = x_VE/√(σ_0² + 1) (= ε for the plan's initial noise).
  let cur = allocLike(x);
  const initScale = 1 / Math.sqrt(sigmas[0] * sigmas[0] + 1);
  for (let j = 0; j < cur.length; j++) cur[j] = x[j] * initScale;
  const ets: Float64Array[] = []; // most recent last, at most 4
  for (let i = 0; i < n; i++) {
    const t = points[i];
    const next = points[i + 1];
    let first: DenoiseResult;
    if (i < PRK_STEPS) {
      // One pseudo Runge–Kutta block: four calls, every transfer from the block's first sample.
      const half = Math.floor((t - next) / 2);
      const base = cur;
      const c0 = await model(base, t, i);
      first = Float64Array.from(c0.denoised);
      ets.push(c0.m);
      const mix = new Float64Array(c0.m.length);
      for (let j = 0; j < mix.length; j++) mix[j] = (1 / 6) * c0.m[j];
      const x1 = transfer(base, t, t - half, c0.m, prediction);
      const c1 = await model(x1, next + half, i);
      for (let j = 0; j < mix.length; j++) mix[j] = mix[j] + (1 / 3) * c1.m[j];
      const x2 = transfer(base, t, next + half, c1.m, prediction);
      const c2 = await model(x2, next + half, i);
      for (let j = 0; j < mix.length; j++) mix[j] = mix[j] + (1 / 3) * c2.m[j];
      const x3 = transfer(base, t, next, c2.m, prediction);
      const c3 = await model(x3, next, i);
      for (let j = 0; j < mix.length; j++) mix[j] = mix[j] + (1 / 6) * c3.m[j];
      cur = transfer(base, t, next, mix, prediction);
    } else {
      const c = await model(cur, t, i);
      first = c.denoised;
      ets.push(c.m);
      if (ets.length > 4) ets.shift();
      const [e3, e2, e1, e0] = ets;
      const combined = new Float64Array(c.m.length);
      for (let j = 0; j < combined.length; j++) {
        combined[j] = (1 / 24) * (55 * e0[j] - 59 * e1[j] + 37 * e2[j] - 9 * e3[j]);
      }
      cur = transfer(cur, t, next, combined, prediction);
    }
    opts.onStep?.(i, n, { sigma: sigmas[i], sigmaNext: sigmas[i + 1], x: toVe(cur, sigmas[i + 1]), denoised: first });
  }
  return toVe(cur, sigmas[n]);
}
