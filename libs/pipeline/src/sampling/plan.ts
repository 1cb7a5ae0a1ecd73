/**
 * Sampling plans: turn the user's (sampler, scheduler, steps) into the VE sigmas to step through,
 * the model timestep of each step, the initial noise scale and the sampler method that runs them
 * (model contract §4.2–§4.7, service subset).
 *
 * All plans run in the VE variable x (the UNet always sees x·c_in(σ), the VP sample):
 * - `diffuser_dpm` (default; diffusers DPMSolverMultistepScheduler, dpmsolver++, order 2, midpoint,
 *   lower_order_final, final sigma 0, leading spacing, steps_offset 1): ratio = ⌊1000/(n+1)⌋,
 *   t_k = (n−k)·ratio + 1 (integers), σ_k = table[t_k], σ_n = 0; runs as `dpmpp_2m` — diffusers'
 *   VP-form first/second-order updates divided by α_{k+1} are exactly k-diffusion's DPM++ 2M update
 *   (x_VE = x_VP·√(σ²+1)); the test suite checks this numerically. Scheduler `karras`: Karras(n)
 *   sigmas (rounded to float32 like diffusers' `sigmas.astype(np.float32)`) with integer
 *   t = round-half-even(σ→t(σ_k)) (numpy `round`); any other scheduler is ignored.
 * - `dpmpp_2m` (k-diffusion; automatic = Karras), `euler`, `euler_ancestral` (automatic = uniform):
 *   sigmas from §4.3, continuous t = σ→t(σ_k), x_0 = ε·σ_0.
 * - `ddim` (diffusers DDIM, η = 0, leading, steps_offset 1, set_alpha_to_one): ratio = ⌊1000/n⌋,
 *   t_k = (n−1−k)·ratio + 1; σ_k = table[t_k]; each step goes to table[t_k − ratio] or 0 when that
 *   index is < 0. In VE form a DDIM η = 0 step is exactly an Euler step between those sigmas,
 *   so it runs as `euler`. Scheduler ignored.
 * - diffusers plans start from x_VP = ε, i.e. x_VE = ε·√(σ_0² + 1).
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

export const SAMPLERS = ['diffuser_dpm', 'dpmpp_2m', 'euler', 'euler_ancestral', 'ddim'] as const;
export type SamplerName = (typeof SAMPLERS)[number];

export const SCHEDULERS = ['automatic', 'karras', 'exponential', 'uniform', 'polyexponential', 'sgm_uniform'] as const;
export type SchedulerName = (typeof SCHEDULERS)[number];

/** The schedule a plan actually used: a named k-diffusion schedule or diffusers' `leading` spacing. */
export type ResolvedSchedule = Exclude<SchedulerName, 'automatic'> | 'leading';

export const DEFAULT_SAMPLER: SamplerName = 'diffuser_dpm';
export const DEFAULT_SCHEDULER: SchedulerName = 'automatic';
export const DEFAULT_STEPS = 20;
export const MIN_STEPS = 1;
export const MAX_STEPS = 100;

/** The reference UI's names for the service samplers (for display and docs). */
export const SAMPLER_LABELS: Readonly<Record<SamplerName, string>> = {
  diffuser_dpm: 'diffuser_dpm',
  dpmpp_2m: 'DPM++ 2M',
  euler: 'Euler',
  euler_ancestral: 'Euler a',
  ddim: 'diffuser_ddim',
};

export interface SamplingRequest {
  /** Default `diffuser_dpm`. */
  sampler?: string;
  /** Default `automatic`. */
  scheduler?: string;
  /** Integer 1..100, default 20. */
  steps?: number;
}

export interface SamplingPlan {
  sampler: SamplerName;
  /** The scheduler as requested (after defaulting). */
  scheduler: SchedulerName;
  /** The schedule actually used. */
  schedule: ResolvedSchedule;
  steps: number;
  /** VE noise levels σ_0 > … > σ_{n−1} > σ_n = 0 (length steps + 1). */
  sigmas: Float64Array;
  /** The UNet timestep for each non-final sigma (length steps): integers for diffusers plans. */
  timesteps: Float64Array;
  /** x_0 = ε·initNoiseScale (VE). σ_0 for k-diffusion plans, √(σ_0² + 1) for diffusers plans. */
  initNoiseScale: number;
  /** The sampler function in `samplers` that runs this plan. */
  method: SamplerMethod;
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
  const sampler = req.sampler ?? DEFAULT_SAMPLER;
  if (!(SAMPLERS as readonly string[]).includes(sampler)) {
    throw new PipelineError(
      'UNKNOWN_SAMPLER',
      `unknown sampler ${JSON.stringify(sampler)}; valid samplers: ${SAMPLERS.join(', ')}`,
      'settings.sampler',
    );
  }
  const scheduler = req.scheduler ?? DEFAULT_SCHEDULER;
  if (!(SCHEDULERS as readonly string[]).includes(scheduler)) {
    throw new PipelineError(
      'INVALID_KNOB',
      `unknown scheduler ${JSON.stringify(scheduler)}; valid schedulers: ${SCHEDULERS.join(', ')}`,
      'settings.scheduler',
    );
  }
  const steps = req.steps ?? DEFAULT_STEPS;
  if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < MIN_STEPS || steps > MAX_STEPS) {
    throw new PipelineError('INVALID_KNOB', `steps must be an integer in ${MIN_STEPS}..${MAX_STEPS}, got ${String(steps)}`, 'settings.steps');
  }
  return { sampler: sampler as SamplerName, scheduler: scheduler as SchedulerName, steps };
}

/** Build the sampling plan for a request. Throws PipelineError UNKNOWN_SAMPLER / INVALID_KNOB. */
export function planSampling(req: SamplingRequest = {}): SamplingPlan {
  const { sampler, scheduler, steps: n } = validate(req);
  const table = discreteSchedule().sigmas;
  const sigmas = new Float64Array(n + 1);
  const timesteps = new Float64Array(n);

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
      const initNoiseScale = Math.sqrt(sigmas[0] * sigmas[0] + 1);
      return { sampler, scheduler, schedule, steps: n, sigmas, timesteps, initNoiseScale, method: 'dpmpp_2m' };
    }
    case 'ddim': {
      const ratio = Math.floor(NUM_TRAIN_TIMESTEPS / n);
      for (let k = 0; k < n; k++) {
        timesteps[k] = (n - 1 - k) * ratio + 1;
        sigmas[k] = table[timesteps[k]];
      }
      const prev = timesteps[n - 1] - ratio; // alphas_cumprod[prev] or final_alpha_cumprod = 1 (σ = 0)
      sigmas[n] = prev >= 0 ? table[prev] : 0;
      const initNoiseScale = Math.sqrt(sigmas[0] * sigmas[0] + 1);
      return { sampler, scheduler, schedule: 'leading', steps: n, sigmas, timesteps, initNoiseScale, method: 'euler' };
    }
    case 'dpmpp_2m':
    case 'euler':
    case 'euler_ancestral': {
      const schedule: Exclude<SchedulerName, 'automatic'> =
        scheduler !== 'automatic' ? scheduler : sampler === 'dpmpp_2m' ? 'karras' : 'uniform';
      sigmas.set(kSigmas(schedule, n));
      for (let k = 0; k < n; k++) timesteps[k] = sigmaToT(sigmas[k]);
      return { sampler, scheduler, schedule, steps: n, sigmas, timesteps, initNoiseScale: sigmas[0], method: sampler };
    }
  }
}

/**
 * Relative progress tr = 1 − t/999 of a UNet call at model timestep t (contract §3, guidance window):
 * rises from ≈0 to 1 over a run.
 */
export const progressOfTimestep = (t: number): number => 1 - t / (NUM_TRAIN_TIMESTEPS - 1);
