/**
 * k-diffusion style samplers (model contract §4.2–§4.6), written from the formulas of
 * `k_diffusion/sampling.py` (crowsonkb/k-diffusion, vendored by the official app):
 * - deterministic (`samplers-ode.ts`): `euler`, `heun`, `dpm_2`, `lms`, `dpmpp_2m`;
 * - stochastic (`samplers-stochastic.ts`): `euler_ancestral`, `dpm_2_ancestral`,
 *   `dpmpp_2s_ancestral`, `dpmpp_sde`, `dpmpp_2m_sde`, `dpmpp_2m_sde_heun`, `dpmpp_3m_sde`;
 * - DPM-Solver (`dpm-solver.ts`): `dpm_fast`, `dpm_adaptive`;
 * - diffusers' PNDM (`pndm.ts`): `pndm`, on the discrete schedule only (table sigmas), four
 *   calls per step in its first three steps.
 *
 * Every sampler is `async (denoise, x, sigmas, opts?) => x`:
 * - `x` is the initial VE sample (already scaled by the plan's `initNoiseScale`), Float32Array or
 *   Float64Array. It is not modified; each step allocates a new array of the same type, so the
 *   result has the input's type. Per element the update is evaluated in float64 and stored in the
 *   array's precision (a Float32Array state, and the intermediate points of two-stage samplers, are
 *   rounded to float32).
 * - `sigmas` is the descending noise-level list, normally ending in 0 (n steps = length − 1).
 *   `dpm_fast` and `dpm_adaptive` use only its positive minimum and its maximum (and n); `pndm`
 *   needs σ-table values and may end above 0 (the app's PNDM stops at σ_min).
 * - `denoise(x, sigma, i)` returns D(x, σ) (any numeric array of x's length, or a Promise of one);
 *   `i` is the step during which the call happens. Heun, DPM2, DPM2 a, DPM++ 2S a and DPM++ SDE
 *   call it twice per step (the second time at an intermediate σ, same i), DPM fast/adaptive up to
 *   three times per solver step, PNDM four times in each of its first three steps; so the model
 *   timestep must come from σ (`modelTimestep`), not from i alone. Samplers never keep a reference to `x` after the call nor rely on the returned
 *   array staying unchanged (what they keep is copied), so a denoiser may reuse its output buffer.
 * - `opts.signal` is checked before every denoiser call; when aborted the sampler throws
 *   `PipelineError('CANCELLED')`. `opts.onStep(i, n, info)` runs once per step (see
 *   `SamplerOptions.onStep` for DPM fast/adaptive). `opts.noise(k)` supplies the stochastic
 *   samplers' Gaussian draws (see `AncestralOptions.noise`).
 */
import { dpm_adaptive, dpm_fast } from './dpm-solver.ts';
import { pndm } from './pndm.ts';
import type { Sampler } from './sampler-core.ts';
import { dpm_2, dpmpp_2m, euler, heun, lms } from './samplers-ode.ts';
import {
  dpm_2_ancestral,
  dpmpp_2m_sde,
  dpmpp_2m_sde_heun,
  dpmpp_2s_ancestral,
  dpmpp_3m_sde,
  dpmpp_sde,
  euler_ancestral,
} from './samplers-stochastic.ts';

export * from './sampler-core.ts';
export * from './samplers-ode.ts';
export * from './samplers-stochastic.ts';
export * from './dpm-solver.ts';
export * from './pndm.ts';

/** The sampler methods a plan can name. */
export const SAMPLER_METHODS = [
  'euler',
  'euler_ancestral',
  'dpmpp_2m',
  'heun',
  'dpm_2',
  'dpm_2_ancestral',
  'lms',
  'dpmpp_2s_ancestral',
  'dpmpp_sde',
  'dpmpp_2m_sde',
  'dpmpp_2m_sde_heun',
  'dpmpp_3m_sde',
  'dpm_fast',
  'dpm_adaptive',
  'pndm',
] as const;
export type SamplerMethod = (typeof SAMPLER_METHODS)[number];

export const samplers: Record<SamplerMethod, Sampler> = {
  euler,
  euler_ancestral,
  dpmpp_2m,
  heun,
  dpm_2,
  dpm_2_ancestral,
  lms,
  dpmpp_2s_ancestral,
  dpmpp_sde,
  dpmpp_2m_sde,
  dpmpp_2m_sde_heun,
  dpmpp_3m_sde,
  dpm_fast,
  dpm_adaptive,
  pndm,
};
