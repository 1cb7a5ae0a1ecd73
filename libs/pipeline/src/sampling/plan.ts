/**
 * Sampling plans: turn the user's (sampler, scheduler, steps) into the VE sigmas to step through,
 * the model timestep of each step, the initial noise scale and the sampler method that runs them
 * (model contract §4.2–§4.7; the app's `refnet/sampling/sampler.py` for the k-diffusion list).
 *
 * All plans run in the VE variable x (the UNet always sees x·c_in(σ), the VP sample):
 * - `diffuser_dpm` (default; diffusers DPMSolverMultistepScheduler, dpmsolver++, order 2, midpoint,
 *   lower_order_final, final sigma 0, leading spacing, steps_offset 1): ratio = ⌊1000/(n+1)⌋,
 *   t_k = (n−k)·ratio + 1 (integers), σ_k = table[t_k], σ_n = 0; runs as `dpmpp_2m` — diffusers'
 *   VP-form first/second-order updates divided by α_{k+1} are exactly k-diffusion's DPM++ 2M update
 *   (x_VE = x_VP·√(σ²+1)); the test suite checks this numerically. Scheduler `karras`: Karras(n)
 *   sigmas (rounded to float32 like diffusers' `sigmas.astype(np.float32)`) with integer
 *   t = round-half-even(σ→t(σ_k)) (numpy `round`); any other scheduler is ignored.
 * - `ddim` (diffusers DDIM, η = 0, leading, steps_offset 1, set_alpha_to_one): ratio = ⌊1000/n⌋,
 *   t_k = (n−1−k)·ratio + 1; σ_k = table[t_k]; each step goes to table[t_k − ratio] or 0 when that
 *   index is < 0. In VE form a DDIM η = 0 step is exactly an Euler step between those sigmas,
 *   so it runs as `euler`. Scheduler ignored.
 * - `diffuser_lms` (diffusers LMSDiscreteScheduler, leading, steps_offset 1, order 4): the DDIM
 *   timesteps t_k = (n−1−k)·⌊1000/n⌋ + 1 with σ_k = table[t_k], then σ_n = 0; runs as `lms`, which is
 *   the same linear multistep update in σ (diffusers' v-prediction x̂₀ is our D). Scheduler `karras`:
 *   Karras(n) between those leading sigmas' ends (diffusers' `_convert_to_karras(in_sigmas)`),
 *   float32, with t = σ→t(σ_k) (not rounded); any other scheduler is ignored.
 * - `diffuser_pndm` (diffusers PNDMScheduler as the app builds it: leading, steps_offset 1,
 *   skip_prk_steps and set_alpha_to_one off): the DDIM timesteps t_k with σ_k = table[t_k], and
 *   σ_n = table[0] (set_alpha_to_one off: the last step ends at ā_0, σ_min ≈ 0.0292, not at 0);
 *   runs as `pndm` (three Runge–Kutta blocks of four calls at table timesteps, then Adams–Bashforth
 *   4: n + 9 UNet calls). Every call is at a table σ, so its timestep is σ→t(σ), an integer
 *   (`timestepMode: 'sigma'`). Needs n ≥ 4 (diffusers cannot set up fewer). Scheduler ignored
 *   (diffusers' PNDM has no Karras option).
 * - diffusers plans start from x_VP = ε, i.e. x_VE = ε·√(σ_0² + 1); DPM, DDIM and LMS give the UNet
 *   their own timesteps[i] (`timestepMode: 'step'`). They end in VP form: the latent to decode is
 *   x_VE·c_in(σ_n) (`decodeScale`), which is x_VE itself whenever σ_n = 0 (every plan but PNDM's).
 * - k-diffusion samplers (the rest): sigmas from §4.3 for the requested scheduler (our id or the
 *   app's label, `SCHEDULER_LABELS`), or for
 *   `automatic` the app's pairing — Karras for DPM++ 2M, DPM++ SDE, DPM++ 2S a, DPM2, DPM2 a;
 *   exponential for DPM++ 2M SDE (+ Heun) and DPM++ 3M SDE; the model's uniform-in-t schedule for
 *   Euler, Euler a, Heun, LMS, DPM fast and DPM adaptive. DPM2, DPM2 a and DPM++ 3M SDE build n + 1
 *   sigmas and drop the second-to-last (any scheduler). x_0 = ε·σ_0; the UNet timestep of every
 *   call, intermediate ones included, is σ→t(σ) (`timestepMode: 'sigma'`). DPM fast and DPM
 *   adaptive only take σ_min/σ_max (and n) from the sigmas and need n ≥ 2 (with one step
 *   σ_min = σ_max, which the app's k-diffusion refuses too).
 */
import { PipelineError } from '../errors.ts';
import type { SamplerMethod } from './samplers.ts';
import { discreteSchedule, NUM_TRAIN_TIMESTEPS, SIGMA_MAX, SIGMA_MIN, sigmaToT } from './schedule.ts';
import {
  getSigmasExponential,
  getSigmasKarras,
  getSigmasPolyexponential,
  getSigmasSgmUniform,
  getSigmasUniform,
} from './sigmas.ts';
import { SAMPLER_LABELS, SAMPLERS, SCHEDULER_LABELS, SCHEDULERS, type SamplerName, type SchedulerName } from './names.ts';
import { PNDM_MIN_STEPS } from './pndm.ts';

export {
  SAMPLER_CHOICES,
  SAMPLER_LABELS,
  SAMPLERS,
  SCHEDULER_CHOICES,
  SCHEDULER_LABELS,
  SCHEDULERS,
  type SamplerChoice,
  type SamplerLabel,
  type SamplerName,
  type SchedulerChoice,
  type SchedulerLabel,
  type SchedulerName,
} from './names.ts';

/** The schedule a plan actually used: a named k-diffusion schedule or diffusers' `leading` spacing. */
export type ResolvedSchedule = Exclude<SchedulerName, 'automatic'> | 'leading';

export const DEFAULT_SAMPLER: SamplerName = 'diffuser_dpm';
export const DEFAULT_SCHEDULER: SchedulerName = 'automatic';
export const DEFAULT_STEPS = 20;
export const MIN_STEPS = 1;
export const MAX_STEPS = 100;

/** Our sampler id for an id or an app label (exact spelling), or undefined. */
export function resolveSampler(name: string): SamplerName | undefined {
  if ((SAMPLERS as readonly string[]).includes(name)) return name as SamplerName;
  return SAMPLERS.find((id) => SAMPLER_LABELS[id] === name);
}

/** Our scheduler id for an id or an app label ("SGM Uniform" = sgm_uniform; exact spelling), or undefined. */
export function resolveScheduler(name: string): SchedulerName | undefined {
  if ((SCHEDULERS as readonly string[]).includes(name)) return name as SchedulerName;
  return SCHEDULERS.find((id) => SCHEDULER_LABELS[id] === name);
}

type KSchedule = Exclude<SchedulerName, 'automatic'>;
type DiffusersSamplerName = 'diffuser_dpm' | 'ddim' | 'diffuser_lms' | 'diffuser_pndm';
type KSamplerName = Exclude<SamplerName, DiffusersSamplerName>;

/** Fewest steps of the diffusers samplers that cannot run 1. */
const DIFFUSERS_MIN_STEPS: Partial<Record<DiffusersSamplerName, number>> = { diffuser_pndm: PNDM_MIN_STEPS };

/** The app's pairing for the k-diffusion samplers (`refnet/sampling/sampler.py` options). */
interface KSamplerSpec {
  /** What `automatic` means for this sampler. */
  automatic: KSchedule;
  /** Build n + 1 sigmas and drop the second-to-last. */
  discardNextToLast?: true;
  /** Fewest steps the sampler can run. */
  minSteps?: number;
}

export const K_SAMPLER_SPECS: Readonly<Record<KSamplerName, KSamplerSpec>> = {
  dpmpp_2m: { automatic: 'karras' },
  euler: { automatic: 'uniform' },
  euler_ancestral: { automatic: 'uniform' },
  heun: { automatic: 'uniform' },
  dpm_2: { automatic: 'karras', discardNextToLast: true },
  dpm_2_ancestral: { automatic: 'karras', discardNextToLast: true },
  lms: { automatic: 'uniform' },
  dpmpp_2s_ancestral: { automatic: 'karras' },
  dpmpp_sde: { automatic: 'karras' },
  dpmpp_2m_sde: { automatic: 'exponential' },
  dpmpp_2m_sde_heun: { automatic: 'exponential' },
  dpmpp_3m_sde: { automatic: 'exponential', discardNextToLast: true },
  dpm_fast: { automatic: 'uniform', minSteps: 2 },
  dpm_adaptive: { automatic: 'uniform', minSteps: 2 },
};

export interface SamplingRequest {
  /** An id of `SAMPLERS` or an app label of `SAMPLER_LABELS`. Default `diffuser_dpm`. */
  sampler?: string;
  /** An id of `SCHEDULERS` or an app label of `SCHEDULER_LABELS`. Default `automatic`. */
  scheduler?: string;
  /** Integer 1..100, default 20. */
  steps?: number;
}

export interface SamplingPlan {
  /** Our id (an app label in the request is resolved to it). */
  sampler: SamplerName;
  /** The scheduler as requested (after defaulting; an app label in the request is resolved to our id). */
  scheduler: SchedulerName;
  /** The schedule actually used. */
  schedule: ResolvedSchedule;
  steps: number;
  /** VE noise levels σ_0 > … > σ_{n−1} > σ_n (length steps + 1); σ_n = 0 except for `diffuser_pndm` (σ_min). */
  sigmas: Float64Array;
  /**
   * The UNet timestep of each step's first call (length steps): integers for the diffusers plans
   * with leading spacing (PNDM's Runge–Kutta steps also call at integer timesteps between them),
   * σ→t(σ_k) otherwise. Use `modelTimestep` for any call.
   */
  timesteps: Float64Array;
  /**
   * How the UNet timestep of a denoiser call is found: `step` — it is timesteps[i] (diffusers DPM,
   * DDIM and LMS; every call of step i is at sigmas[i]); `sigma` — it is σ→t(σ) of the call
   * (k-diffusion, where two-stage samplers also call at intermediate σ; and `diffuser_pndm`, whose
   * every call is at a table σ, so σ→t gives its integer timestep exactly).
   */
  timestepMode: 'step' | 'sigma';
  /** x_0 = ε·initNoiseScale (VE). σ_0 for k-diffusion plans, √(σ_0² + 1) for diffusers plans. */
  initNoiseScale: number;
  /**
   * The latent to decode is the sampler's result × decodeScale = c_in(σ_n) = 1/√(σ_n² + 1): the VP
   * sample the app decodes. 1 whenever σ_n = 0, i.e. for every plan but `diffuser_pndm`'s.
   */
  decodeScale: number;
  /** The sampler function in `samplers` that runs this plan. */
  method: SamplerMethod;
}

/**
 * The UNet timestep for a denoiser call at `sigma` during step `i` of `plan` (see
 * `SamplingPlan.timestepMode`). Throws RangeError when a `step` plan is called off its sigmas.
 */
export function modelTimestep(plan: Pick<SamplingPlan, 'timestepMode' | 'timesteps' | 'sigmas'>, sigma: number, i: number): number {
  if (plan.timestepMode === 'sigma') return sigmaToT(sigma);
  if (!(i >= 0 && i < plan.timesteps.length) || sigma !== plan.sigmas[i]) {
    throw new RangeError(`modelTimestep: step ${i} of this plan is at σ = ${plan.sigmas[i]}, not ${sigma}`);
  }
  return plan.timesteps[i];
}

/** numpy's `round` (round half to even). */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function kSigmas(schedule: Exclude<SchedulerName, 'automatic'>, n: number): Float64Array {
  switch (schedule) {
    case 'karras':
      return getSigmasKarras(n, SIGMA_MIN, SIGMA_MAX);
    case 'exponential':
      return getSigmasExponential(n, SIGMA_MIN, SIGMA_MAX);
    case 'polyexponential':
      return getSigmasPolyexponential(n, SIGMA_MIN, SIGMA_MAX, 1);
    case 'uniform':
      return getSigmasUniform(n);
    case 'sgm_uniform':
      return getSigmasSgmUniform(n);
  }
}

function validate(req: SamplingRequest): { sampler: SamplerName; scheduler: SchedulerName; steps: number } {
  const requested = req.sampler ?? DEFAULT_SAMPLER;
  const sampler = typeof requested === 'string' ? resolveSampler(requested) : undefined;
  if (sampler === undefined) {
    const choices = SAMPLERS.map((id) => (SAMPLER_LABELS[id] === id ? id : `${id} ("${SAMPLER_LABELS[id]}")`));
    throw new PipelineError(
      'UNKNOWN_SAMPLER',
      `unknown sampler ${JSON.stringify(requested)}; valid samplers (id or the app's label): ${choices.join(', ')}`,
      'settings.sampler',
    );
  }
  const requestedScheduler = req.scheduler ?? DEFAULT_SCHEDULER;
  const scheduler = typeof requestedScheduler === 'string' ? resolveScheduler(requestedScheduler) : undefined;
  if (scheduler === undefined) {
    const choices = SCHEDULERS.map((id) => `${id} ("${SCHEDULER_LABELS[id]}")`);
    throw new PipelineError(
      'INVALID_KNOB',
      `unknown scheduler ${JSON.stringify(requestedScheduler)}; valid schedulers (id or the app's label): ${choices.join(', ')}`,
      'settings.scheduler',
    );
  }
  const steps = req.steps ?? DEFAULT_STEPS;
  if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < MIN_STEPS || steps > MAX_STEPS) {
    throw new PipelineError('INVALID_KNOB', `steps must be an integer in ${MIN_STEPS}..${MAX_STEPS}, got ${String(steps)}`, 'settings.steps');
  }
  const minSteps =
    sampler in K_SAMPLER_SPECS
      ? (K_SAMPLER_SPECS[sampler as KSamplerName].minSteps ?? MIN_STEPS)
      : (DIFFUSERS_MIN_STEPS[sampler as DiffusersSamplerName] ?? MIN_STEPS);
  if (steps < minSteps) {
    const why = sampler === 'diffuser_pndm' ? 'three Runge–Kutta steps come before its multistep ones' : 'with fewer its σ range is empty';
    throw new PipelineError('INVALID_KNOB', `${SAMPLER_LABELS[sampler]} needs at least ${minSteps} steps (${why}), got ${steps}`, 'settings.steps');
  }
  return { sampler, scheduler, steps };
}

/** diffusers' leading timesteps of DDIM and LMS: t_k = (n−1−k)·⌊1000/n⌋ + 1. */
function leadingTimesteps(n: number): Float64Array {
  const ratio = Math.floor(NUM_TRAIN_TIMESTEPS / n);
  return Float64Array.from({ length: n }, (_, k) => (n - 1 - k) * ratio + 1);
}

/** Build the sampling plan for a request. Throws PipelineError UNKNOWN_SAMPLER / INVALID_KNOB. */
export function planSampling(req: SamplingRequest = {}): SamplingPlan {
  const { sampler, scheduler, steps: n } = validate(req);
  const table = discreteSchedule().sigmas;
  const sigmas = new Float64Array(n + 1);
  const timesteps = new Float64Array(n);
  const diffusersPlan = (schedule: ResolvedSchedule, method: SamplerMethod, timestepMode: SamplingPlan['timestepMode'] = 'step'): SamplingPlan => {
    const initNoiseScale = Math.sqrt(sigmas[0] * sigmas[0] + 1);
    const decodeScale = 1 / Math.sqrt(sigmas[n] * sigmas[n] + 1);
    return { sampler, scheduler, schedule, steps: n, sigmas, timesteps, timestepMode, initNoiseScale, decodeScale, method };
  };

  switch (sampler) {
    case 'diffuser_dpm': {
      let schedule: ResolvedSchedule;
      if (scheduler === 'karras') {
        schedule = 'karras';
        const karras = getSigmasKarras(n, SIGMA_MIN, SIGMA_MAX);
        for (let k = 0; k < n; k++) {
          timesteps[k] = roundHalfEven(sigmaToT(karras[k]));
          sigmas[k] = Math.fround(karras[k]);
        }
      } else {
        schedule = 'leading';
        const ratio = Math.floor(NUM_TRAIN_TIMESTEPS / (n + 1));
        for (let k = 0; k < n; k++) {
          timesteps[k] = (n - k) * ratio + 1;
          sigmas[k] = table[timesteps[k]];
        }
      }
      sigmas[n] = 0;
      return diffusersPlan(schedule, 'dpmpp_2m');
    }
    case 'ddim': {
      const ratio = Math.floor(NUM_TRAIN_TIMESTEPS / n);
      timesteps.set(leadingTimesteps(n));
      for (let k = 0; k < n; k++) sigmas[k] = table[timesteps[k]];
      const prev = timesteps[n - 1] - ratio; // alphas_cumprod[prev] or final_alpha_cumprod = 1 (σ = 0)
      sigmas[n] = prev >= 0 ? table[prev] : 0;
      return diffusersPlan('leading', 'euler');
    }
    case 'diffuser_lms': {
      const leading = leadingTimesteps(n);
      if (scheduler === 'karras') {
        // _convert_to_karras(in_sigmas): σ_max = in_sigmas[0], σ_min = in_sigmas[-1] (the leading ends).
        const karras = getSigmasKarras(n, table[leading[n - 1]], table[leading[0]]);
        for (let k = 0; k < n; k++) {
          sigmas[k] = Math.fround(karras[k]);
          timesteps[k] = Math.fround(sigmaToT(karras[k]));
        }
      } else {
        timesteps.set(leading);
        for (let k = 0; k < n; k++) sigmas[k] = table[timesteps[k]];
      }
      sigmas[n] = 0;
      return diffusersPlan(scheduler === 'karras' ? 'karras' : 'leading', 'lms');
    }
    case 'diffuser_pndm': {
      timesteps.set(leadingTimesteps(n));
      for (let k = 0; k < n; k++) sigmas[k] = table[timesteps[k]];
      // The last step's prev_timestep is < 0: final_alpha_cumprod = ā_0 (set_alpha_to_one off).
      sigmas[n] = table[0];
      return diffusersPlan('leading', 'pndm', 'sigma');
    }
    default: {
      const spec = K_SAMPLER_SPECS[sampler];
      const schedule: KSchedule = scheduler === 'automatic' ? spec.automatic : scheduler;
      if (spec.discardNextToLast) {
        const longer = kSigmas(schedule, n + 1);
        sigmas.set(longer.subarray(0, n));
        sigmas[n] = longer[n + 1];
      } else {
        sigmas.set(kSigmas(schedule, n));
      }
      for (let k = 0; k < n; k++) timesteps[k] = sigmaToT(sigmas[k]);
      return { sampler, scheduler, schedule, steps: n, sigmas, timesteps, timestepMode: 'sigma', initNoiseScale: sigmas[0], decodeScale: 1, method: sampler };
    }
  }
}

/**
 * Relative progress tr = 1 − t/999 of a UNet call at model timestep t (contract §3, guidance window):
 * rises from ≈0 to 1 over a run.
 */
export const progressOfTimestep = (t: number): number => 1 - t / (NUM_TRAIN_TIMESTEPS - 1);
