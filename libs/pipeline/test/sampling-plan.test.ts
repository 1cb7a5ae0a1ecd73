import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPipelineError } from '../src/errors.ts';
import { packSchema } from '../src/pack/schema.ts';
import {
  denoisedFromModelOutput,
  discreteSchedule,
  gaussianNoise,
  getSigmasExponential,
  getSigmasKarras,
  getSigmasPolyexponential,
  getSigmasSgmUniform,
  getSigmasUniform,
  modelTimestep,
  planSampling,
  progressOfTimestep,
  resolveSampler,
  resolveScheduler,
  SAMPLER_CHOICES,
  SAMPLER_LABELS,
  samplers,
  SAMPLERS,
  scaleModelInput,
  SCHEDULER_CHOICES,
  SCHEDULER_LABELS,
  SCHEDULERS,
  SIGMA_MAX,
  SIGMA_MIN,
  sigmaToT,
} from '../src/sampling/index.ts';
import type { Denoiser, SamplerName, SamplingPlan, SchedulerName } from '../src/sampling/index.ts';
import { resolvedSettingsSchema, resolveSettings, settingsSchema } from '../src/settings.ts';

const close = (actual: number, expected: number, tol: number, what = ''): void => {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected} (tol ${tol})`);
};

function assertRelClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let maxAbs = 0;
  let maxErr = 0;
  for (let j = 0; j < expected.length; j++) {
    maxAbs = Math.max(maxAbs, Math.abs(expected[j]));
    maxErr = Math.max(maxErr, Math.abs(actual[j] - expected[j]));
  }
  assert.ok(Number.isFinite(maxErr) && maxErr <= rel * maxAbs, `${what}: max error ${maxErr} > ${rel} × ${maxAbs}`);
}

const rejectsWith = (fn: () => unknown, code: string, field: string): void =>
  assert.throws(fn, (e: unknown) => isPipelineError(e) && e.code === code && e.field === field);

describe('planSampling: reference numbers of the contract', () => {
  it('diffuser_dpm n = 20 (default): leading timesteps 941 … 48 and table sigmas', () => {
    const p = planSampling({ sampler: 'diffuser_dpm', scheduler: 'automatic', steps: 20 });
    assert.deepEqual(
      Array.from(p.timesteps),
      Array.from({ length: 20 }, (_, k) => 941 - 47 * k),
    );
    assert.equal(p.timesteps[19], 48);
    const expected = [
      10.425, 8.0882, 6.3803, 5.111, 4.1521, 3.4157, 2.8412, 2.3857, 2.019, 1.719, 1.4698, 1.2596, 1.0796, 0.923, 0.7845,
      0.6599, 0.5457, 0.4381, 0.3326, 0.2204,
    ];
    expected.forEach((e, k) => assert.equal(Number(p.sigmas[k].toFixed(4)), e, `σ_${k} = ${p.sigmas[k]}`));
    assert.equal(p.sigmas.length, 21);
    assert.equal(p.sigmas[20], 0);
    const table = discreteSchedule().sigmas;
    for (let k = 0; k < 20; k++) assert.equal(p.sigmas[k], table[p.timesteps[k]]);
    close(p.initNoiseScale, Math.sqrt(p.sigmas[0] ** 2 + 1), 1e-15);
    assert.equal(p.method, 'dpmpp_2m');
    assert.equal(p.schedule, 'leading');
    assert.deepEqual(planSampling(), p, 'defaults: diffuser_dpm, automatic, 20 steps');
  });

  it('diffuser_ddim n = 20: timesteps 951 … 1, Euler between table sigmas, last to 0', () => {
    const p = planSampling({ sampler: 'ddim', scheduler: 'automatic', steps: 20 });
    assert.deepEqual(
      Array.from(p.timesteps),
      Array.from({ length: 20 }, (_, k) => 951 - 50 * k),
    );
    const table = discreteSchedule().sigmas;
    for (let k = 0; k < 20; k++) assert.equal(p.sigmas[k], table[p.timesteps[k]]);
    assert.equal(p.sigmas[20], 0);
    assert.equal(p.method, 'euler');
    close(p.initNoiseScale, Math.sqrt(p.sigmas[0] ** 2 + 1), 1e-15);
  });

  it('dpmpp_2m automatic = Karras with continuous model t, x0 = ε·σ_0', () => {
    const p = planSampling({ sampler: 'dpmpp_2m', scheduler: 'automatic', steps: 20 });
    assert.equal(p.schedule, 'karras');
    assert.deepEqual(p.sigmas, getSigmasKarras(20, SIGMA_MIN, SIGMA_MAX));
    const ts = [
      999, 961.73, 921.04, 876.31, 826.79, 771.55, 709.53, 639.61, 560.98, 473.75, 380.13, 285.32, 197.08, 123.4,
      69.26, 34.7, 15.48, 5.99, 1.78,
    ];
    ts.forEach((e, k) => assert.equal(Number(p.timesteps[k].toFixed(2)), e, `t_${k} = ${p.timesteps[k]}`));
    assert.equal(p.initNoiseScale, p.sigmas[0]);
    assert.equal(p.method, 'dpmpp_2m');
  });

  it('euler and euler_ancestral automatic = uniform in t', () => {
    for (const sampler of ['euler', 'euler_ancestral'] as const) {
      const p = planSampling({ sampler, steps: 10 });
      assert.equal(p.schedule, 'uniform');
      assert.equal(p.method, sampler);
      for (let k = 0; k < 10; k++) close(p.timesteps[k], 999 * (1 - k / 9), 1e-9);
      assert.equal(p.initNoiseScale, p.sigmas[0]);
    }
  });

  it('diffuser_dpm with Karras: float32 Karras sigmas, integer t = round(σ→t)', () => {
    const p = planSampling({ sampler: 'diffuser_dpm', scheduler: 'karras', steps: 20 });
    const k = getSigmasKarras(20, SIGMA_MIN, SIGMA_MAX);
    assert.deepEqual(
      Array.from(p.timesteps),
      [999, 962, 921, 876, 827, 772, 710, 640, 561, 474, 380, 285, 197, 123, 69, 35, 15, 6, 2, 0],
    );
    for (let i = 0; i < 20; i++) {
      assert.equal(p.sigmas[i], Math.fround(k[i]));
      assert.equal(p.timesteps[i], Math.round(sigmaToT(k[i])));
    }
    assert.equal(p.sigmas[20], 0);
    close(p.initNoiseScale, Math.sqrt(p.sigmas[0] ** 2 + 1), 1e-15);
    // other schedulers do not apply to diffuser_dpm
    assert.deepEqual(planSampling({ sampler: 'diffuser_dpm', scheduler: 'exponential' }).timesteps, planSampling().timesteps);
  });

  it('guidance progress tr = 1 − t/999', () => {
    assert.equal(progressOfTimestep(999), 0);
    assert.equal(progressOfTimestep(0), 1);
  });
});

describe('planSampling: every combination is well formed', () => {
  it('sigmas descend to 0, timesteps lie in [0, 999] (integers for diffusers)', () => {
    for (const sampler of SAMPLERS) {
      for (const scheduler of SCHEDULERS) {
        for (const steps of [1, 2, 3, 7, 20, 33, 50, 100]) {
          const what = `${sampler}/${scheduler}/${steps}`;
          if ((steps === 1 && (sampler === 'dpm_fast' || sampler === 'dpm_adaptive')) || (steps < 4 && sampler === 'diffuser_pndm')) {
            rejectsWith(() => planSampling({ sampler, scheduler, steps }), 'INVALID_KNOB', 'settings.steps');
            continue;
          }
          const p: SamplingPlan = planSampling({ sampler, scheduler, steps });
          assert.equal(p.sigmas.length, steps + 1, what);
          assert.equal(p.timesteps.length, steps, what);
          // diffusers' PNDM ends at ā_0 (set_alpha_to_one off): σ_min, decoded in VP form.
          assert.equal(p.sigmas[steps], sampler === 'diffuser_pndm' ? SIGMA_MIN : 0, what);
          assert.equal(p.decodeScale, 1 / Math.sqrt(p.sigmas[steps] ** 2 + 1), what);
          for (let k = 0; k < steps; k++) {
            assert.ok(p.sigmas[k] > p.sigmas[k + 1], `${what}: σ_${k}`);
            assert.ok(p.timesteps[k] >= 0 && p.timesteps[k] <= 999, `${what}: t_${k}`);
            if (k > 0) assert.ok(p.timesteps[k] <= p.timesteps[k - 1], `${what}: t descending`);
            if (p.schedule === 'leading') assert.ok(Number.isInteger(p.timesteps[k]), what);
          }
          assert.ok(p.initNoiseScale >= p.sigmas[0], what);
          assert.ok(p.method in samplers, what);
          const stepMode = (p.sampler.startsWith('diffuser') && p.sampler !== 'diffuser_pndm') || p.sampler === 'ddim';
          assert.equal(p.timestepMode, stepMode ? 'step' : 'sigma', what);
        }
      }
    }
  });

  it('matches diffusers set_timesteps (leading, steps_offset 1) for every step count', () => {
    for (let n = 1; n <= 100; n++) {
      // DPMSolverMultistepScheduler: step_ratio = last_timestep // (n + 1);
      // (np.arange(0, n + 1) * step_ratio).round()[::-1][:-1] + steps_offset
      const ratio = Math.floor(1000 / (n + 1));
      const dpm = Array.from({ length: n + 1 }, (_, i) => i * ratio).reverse().slice(0, -1).map((t) => t + 1);
      assert.deepEqual(Array.from(planSampling({ sampler: 'diffuser_dpm', steps: n }).timesteps), dpm, `dpm n=${n}`);
      // DDIMScheduler: step_ratio = 1000 // n; (np.arange(0, n) * step_ratio).round()[::-1] + steps_offset
      const r2 = Math.floor(1000 / n);
      const ddim = Array.from({ length: n }, (_, i) => i * r2).reverse().map((t) => t + 1);
      assert.deepEqual(Array.from(planSampling({ sampler: 'ddim', steps: n }).timesteps), ddim, `ddim n=${n}`);
    }
  });
});

describe('planSampling: errors', () => {
  it('unknown sampler → UNKNOWN_SAMPLER naming settings.sampler and listing the valid ones and their labels', () => {
    for (const sampler of ['plms', 'pndm', 'euler a', 'DPM++ 2M Karras', '']) {
      assert.throws(
        () => planSampling({ sampler }),
        (e: unknown) => {
          assert.ok(isPipelineError(e));
          assert.equal(e.code, 'UNKNOWN_SAMPLER');
          assert.equal(e.field, 'settings.sampler');
          for (const s of SAMPLERS) assert.ok(e.message.includes(s), `message lists ${s}: ${e.message}`);
          for (const s of SAMPLERS) assert.ok(e.message.includes(SAMPLER_LABELS[s]), `message lists ${SAMPLER_LABELS[s]}`);
          return true;
        },
        sampler,
      );
    }
  });

  it('DPM fast and DPM adaptive need 2 steps → INVALID_KNOB settings.steps', () => {
    for (const sampler of ['dpm_fast', 'DPM adaptive']) {
      assert.throws(
        () => planSampling({ sampler, steps: 1 }),
        (e: unknown) => isPipelineError(e) && e.code === 'INVALID_KNOB' && e.field === 'settings.steps' && /at least 2 steps/.test(e.message),
      );
      assert.equal(planSampling({ sampler, steps: 2 }).steps, 2);
    }
  });

  it('steps outside 1..100 or not an integer → INVALID_KNOB settings.steps', () => {
    for (const steps of [0, 101, -5, 2.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      rejectsWith(() => planSampling({ sampler: 'euler', steps }), 'INVALID_KNOB', 'settings.steps');
    }
  });

  it('unknown scheduler → INVALID_KNOB settings.scheduler, listing the ids and the app labels', () => {
    for (const scheduler of ['KARRAS', 'sgm uniform', 'SGMUniform', 'Simple', '']) {
      assert.throws(
        () => planSampling({ scheduler }),
        (e: unknown) => {
          assert.ok(isPipelineError(e));
          assert.equal(e.code, 'INVALID_KNOB');
          assert.equal(e.field, 'settings.scheduler');
          for (const id of SCHEDULERS) assert.ok(e.message.includes(`${id} ("${SCHEDULER_LABELS[id]}")`), `lists ${id}: ${e.message}`);
          return true;
        },
        scheduler,
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------
// diffusers in VP form, transcribed from DPMSolverMultistepScheduler (dpmsolver++, solver_order 2,
// midpoint, lower_order_final, final_sigmas_type "zero", v_prediction) and DDIMScheduler (η = 0,
// set_alpha_to_one, v_prediction), checked against our VE runs after x_VE = x_VP·√(σ² + 1).

type Vec = number[];
type VModel = (xVp: Vec, t: number) => Vec;
const N = 48;

/** A nonlinear toy v-model of (VP sample, integer model timestep). */
const toyV: VModel = (x, t) =>
  x.map((v, j) => Math.tanh(0.5 * v + 0.001 * t * Math.cos(j)) + 0.1 * x[(j + 2) % x.length] * Math.sin(t / 100));

function diffusersDpmSolverVP(sigmas: ArrayLike<number>, timesteps: ArrayLike<number>, noise: Vec, model: VModel): Vec[] {
  const solver_order = 2;
  const lower_order_final_cfg = true;
  const euler_at_final = false;
  const final_sigmas_type_zero = true;
  const n = timesteps.length;
  const _sigma_to_alpha_sigma_t = (sigma: number): [number, number] => {
    const alpha_t = 1 / (sigma ** 2 + 1) ** 0.5;
    return [alpha_t, sigma * alpha_t];
  };
  const model_outputs: Array<Vec | null> = [null, null];
  let lower_order_nums = 0;
  let sample = noise.slice(); // init_noise_sigma = 1
  const trajectory: Vec[] = [];
  for (let step_index = 0; step_index < n; step_index++) {
    const model_output_raw = model(sample, timesteps[step_index]); // scale_model_input is the identity
    const lower_order_final =
      step_index === n - 1 && (euler_at_final || (lower_order_final_cfg && n < 15) || final_sigmas_type_zero);
    // convert_model_output: dpmsolver++ with v_prediction
    {
      const [alpha_t, sigma_t] = _sigma_to_alpha_sigma_t(sigmas[step_index]);
      const x0_pred = sample.map((s, j) => alpha_t * s - sigma_t * model_output_raw[j]);
      model_outputs[0] = model_outputs[1];
      model_outputs[1] = x0_pred;
    }
    const model_output = model_outputs[1]!;
    let prev_sample: Vec;
    if (lower_order_nums < 1 || lower_order_final) {
      // dpm_solver_first_order_update
      const [alpha_t, sigma_t] = _sigma_to_alpha_sigma_t(sigmas[step_index + 1]);
      const [alpha_s, sigma_s] = _sigma_to_alpha_sigma_t(sigmas[step_index]);
      const lambda_t = Math.log(alpha_t) - Math.log(sigma_t);
      const lambda_s = Math.log(alpha_s) - Math.log(sigma_s);
      const h = lambda_t - lambda_s;
      prev_sample = sample.map((s, j) => (sigma_t / sigma_s) * s - alpha_t * (Math.exp(-h) - 1.0) * model_output[j]);
    } else {
      // multistep_dpm_solver_second_order_update, midpoint
      const [alpha_t, sigma_t] = _sigma_to_alpha_sigma_t(sigmas[step_index + 1]);
      const [alpha_s0, sigma_s0] = _sigma_to_alpha_sigma_t(sigmas[step_index]);
      const [alpha_s1, sigma_s1] = _sigma_to_alpha_sigma_t(sigmas[step_index - 1]);
      const lambda_t = Math.log(alpha_t) - Math.log(sigma_t);
      const lambda_s0 = Math.log(alpha_s0) - Math.log(sigma_s0);
      const lambda_s1 = Math.log(alpha_s1) - Math.log(sigma_s1);
      const m0 = model_outputs[1]!;
      const m1 = model_outputs[0]!;
      const h = lambda_t - lambda_s0;
      const h_0 = lambda_s0 - lambda_s1;
      const r0 = h_0 / h;
      const D0 = m0;
      const D1 = m0.map((v, j) => (1.0 / r0) * (v - m1[j]));
      prev_sample = sample.map(
        (s, j) =>
          (sigma_t / sigma_s0) * s - alpha_t * (Math.exp(-h) - 1.0) * D0[j] - 0.5 * (alpha_t * (Math.exp(-h) - 1.0)) * D1[j],
      );
    }
    if (lower_order_nums < solver_order) lower_order_nums += 1;
    sample = prev_sample;
    trajectory.push(sample);
  }
  return trajectory;
}

function diffusersDdimVP(alphasCumprod: ArrayLike<number>, n: number, noise: Vec, model: VModel): Vec[] {
  const step_ratio = Math.floor(1000 / n);
  const timesteps = Array.from({ length: n }, (_, i) => i * step_ratio).reverse().map((t) => t + 1);
  const final_alpha_cumprod = 1.0; // set_alpha_to_one
  let sample = noise.slice();
  const trajectory: Vec[] = [];
  for (const timestep of timesteps) {
    const model_output = model(sample, timestep);
    const prev_timestep = timestep - Math.floor(1000 / n);
    const alpha_prod_t = alphasCumprod[timestep];
    const alpha_prod_t_prev = prev_timestep >= 0 ? alphasCumprod[prev_timestep] : final_alpha_cumprod;
    const beta_prod_t = 1 - alpha_prod_t;
    const pred_original_sample = sample.map((s, j) => alpha_prod_t ** 0.5 * s - beta_prod_t ** 0.5 * model_output[j]);
    const pred_epsilon = sample.map((s, j) => alpha_prod_t ** 0.5 * model_output[j] + beta_prod_t ** 0.5 * s);
    const std_dev_t = 0; // η = 0
    const pred_sample_direction = pred_epsilon.map((e) => (1 - alpha_prod_t_prev - std_dev_t ** 2) ** 0.5 * e);
    sample = pred_original_sample.map((x0, j) => alpha_prod_t_prev ** 0.5 * x0 + pred_sample_direction[j]);
    trajectory.push(sample);
  }
  return trajectory;
}

/** Run a plan in VE form with the v-model behind the standard wrapper; returns the VE trajectory. */
async function runVE(plan: SamplingPlan, noise: Vec): Promise<{ final: Float64Array; trajectory: Float64Array[] }> {
  const denoise: Denoiser<Float64Array> = (x, sigma, i) => {
    const v = toyV(Array.from(scaleModelInput(x, sigma)), plan.timesteps[i]);
    return denoisedFromModelOutput(x, v, sigma, 'v');
  };
  const trajectory: Float64Array[] = [];
  const x0 = Float64Array.from(noise, (e) => e * plan.initNoiseScale);
  const final = await samplers[plan.method](denoise, x0, plan.sigmas, {
    onStep: (_i, _n, info) => trajectory.push(Float64Array.from(info.x)),
  });
  return { final, trajectory };
}

describe('diffusers VP form equals our VE runs', () => {
  const noise = Array.from(gaussianNoise(2024, N));

  for (const [scheduler, steps] of [
    ['automatic', 20],
    ['automatic', 10],
    ['automatic', 1],
    ['automatic', 2],
    ['karras', 20],
    ['karras', 8],
  ] as const) {
    it(`diffuser_dpm (${scheduler}, ${steps} steps) = DPM++ 2M in VE form, 1e-9`, async () => {
      const plan = planSampling({ sampler: 'diffuser_dpm', scheduler, steps });
      const vp = diffusersDpmSolverVP(plan.sigmas, plan.timesteps, noise, toyV);
      const ve = await runVE(plan, noise);
      for (let k = 0; k < steps; k++) {
        const s = plan.sigmas[k + 1];
        const asVe = vp[k].map((v) => v * Math.sqrt(s * s + 1)); // x_VE = x_VP·√(σ² + 1)
        assertRelClose(ve.trajectory[k], asVe, 1e-9, `step ${k}`);
      }
      assertRelClose(ve.final, vp[steps - 1], 1e-9, 'final');
    });
  }

  for (const steps of [20, 7, 1]) {
    it(`diffuser_ddim (${steps} steps) = Euler in VE form`, async () => {
      const plan = planSampling({ sampler: 'ddim', steps });
      const ve = await runVE(plan, noise);
      // With ā taken from the sigma table (ā = 1/(σ² + 1)) the identity is exact up to rounding …
      const table = discreteSchedule().sigmas;
      const acFromSigma = Float64Array.from(table, (s) => 1 / (s * s + 1));
      const vp = diffusersDdimVP(acFromSigma, steps, noise, toyV);
      for (let k = 0; k < steps; k++) {
        const s = plan.sigmas[k + 1];
        assertRelClose(ve.trajectory[k], vp[k].map((v) => v * Math.sqrt(s * s + 1)), 1e-9, `step ${k}`);
      }
      // … and with diffusers' own float32 ā it differs only by the float32 rounding of the σ table.
      const vpF32 = diffusersDdimVP(discreteSchedule().alphasCumprod, steps, noise, toyV);
      assertRelClose(ve.final, vpF32[steps - 1], 1e-7, 'final vs float32 ā');
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The app's k-diffusion list (refnet/sampling/sampler.py): "Automatic" pairing and n + 1 sigmas.

/** What each schedule name builds for n steps (contract §4.3). */
const SCHEDULE_FNS: Record<Exclude<SchedulerName, 'automatic'>, (n: number) => Float64Array> = {
  karras: (n) => getSigmasKarras(n, SIGMA_MIN, SIGMA_MAX),
  exponential: (n) => getSigmasExponential(n, SIGMA_MIN, SIGMA_MAX),
  polyexponential: (n) => getSigmasPolyexponential(n, SIGMA_MIN, SIGMA_MAX, 1),
  uniform: (n) => getSigmasUniform(n),
  sgm_uniform: (n) => getSigmasSgmUniform(n),
};

/** The app's table: sampler → (automatic schedule, builds n + 1 and drops the second-to-last). */
const APP_PAIRING: Record<Exclude<SamplerName, 'diffuser_dpm' | 'ddim' | 'diffuser_lms' | 'diffuser_pndm'>, [Exclude<SchedulerName, 'automatic'>, boolean]> = {
  dpmpp_2m: ['karras', false],
  dpmpp_sde: ['karras', false],
  dpmpp_2m_sde: ['exponential', false],
  dpmpp_2m_sde_heun: ['exponential', false],
  dpmpp_2s_ancestral: ['karras', false],
  dpmpp_3m_sde: ['exponential', true],
  euler_ancestral: ['uniform', false],
  euler: ['uniform', false],
  lms: ['uniform', false],
  heun: ['uniform', false],
  dpm_2: ['karras', true],
  dpm_2_ancestral: ['karras', true],
  dpm_fast: ['uniform', false],
  dpm_adaptive: ['uniform', false],
};

describe('planSampling: the app pairing of the k-diffusion samplers', () => {
  for (const [sampler, [automatic, discard]] of Object.entries(APP_PAIRING) as Array<[keyof typeof APP_PAIRING, [Exclude<SchedulerName, 'automatic'>, boolean]]>) {
    it(`${sampler} ("${SAMPLER_LABELS[sampler]}"): automatic = ${automatic}${discard ? ', n + 1 sigmas without the second-to-last' : ''}`, () => {
      for (const scheduler of SCHEDULERS) {
        const schedule = scheduler === 'automatic' ? automatic : scheduler;
        for (const n of [2, 5, 20]) {
          const p = planSampling({ sampler, scheduler, steps: n });
          const what = `${sampler}/${scheduler}/${n}`;
          assert.equal(p.schedule, schedule, what);
          assert.equal(p.method, sampler, what);
          assert.equal(p.timestepMode, 'sigma', what);
          let expected = SCHEDULE_FNS[schedule](discard ? n + 1 : n);
          if (discard) expected = Float64Array.from([...expected.subarray(0, n), 0]); // sigmas[:-2] + sigmas[-1:]
          assert.deepEqual(p.sigmas, expected, what);
          assert.equal(p.initNoiseScale, p.sigmas[0], `${what}: x = ε·σ_0`);
          for (let k = 0; k < n; k++) assert.equal(p.timesteps[k], sigmaToT(p.sigmas[k]), what);
        }
      }
    });
  }

  it('DPM2 at 20 steps keeps σ_max, Karras(21) up to its 20th value, then 0', () => {
    const p = planSampling({ sampler: 'dpm_2', steps: 20 });
    const k21 = getSigmasKarras(21, SIGMA_MIN, SIGMA_MAX);
    assert.equal(p.sigmas.length, 21);
    close(p.sigmas[0], SIGMA_MAX, 1e-12, 'σ_0');
    assert.equal(p.sigmas[19], k21[19]);
    assert.ok(p.sigmas[19] > SIGMA_MIN, 'σ_min (the second-to-last of 22) is dropped');
    assert.equal(p.sigmas[20], 0);
  });
});

// ---------------------------------------------------------------------------------------------
// Aliases: the app's labels are accepted wherever a sampler is named.

const manifest = packSchema.parse({
  contract: 'colorize-diffusion-v2@1',
  id: 'test',
  version: '1',
  licence: { name: 'MIT', text: 'x', commercialUse: true },
  prediction: 'v',
  latent: { factor: 8, channels: 4, scale: 0.18215 },
  size: { multiple: 64, min: 64, max: 1024, default: 128 },
  graphs: {},
});

describe('sampler aliases (the official app labels)', () => {
  const APP_LIST = [
    'DPM adaptive', 'DPM fast', 'DPM++ 2M', 'DPM++ 2M SDE', 'DPM++ 2M SDE Heun', 'DPM++ 2S a', 'DPM++ 3M SDE', 'DPM++ SDE',
    'DPM2', 'DPM2 a', 'Euler', 'Euler a', 'Heun', 'LMS', 'diffuser_ddim', 'diffuser_dpm', 'diffuser_lms', 'diffuser_pndm',
  ];

  it('every app label resolves to one of our ids, and each id has exactly one label', () => {
    for (const label of APP_LIST) {
      const id = resolveSampler(label);
      assert.ok(id, label);
      assert.equal(SAMPLER_LABELS[id], label);
    }
    assert.equal(resolveSampler('diffuser_pndm'), 'diffuser_pndm');
    assert.deepEqual(SAMPLERS.map((id) => SAMPLER_LABELS[id]).sort(), APP_LIST.slice().sort());
    assert.equal(resolveSampler('DPM++ 2M SDE'), 'dpmpp_2m_sde');
    assert.equal(resolveSampler('dpmpp_2m_sde'), 'dpmpp_2m_sde');
    assert.equal(resolveSampler('Euler A'), undefined, 'exact spelling only');
  });

  it('planSampling gives the same plan for a label as for the id', () => {
    for (const id of SAMPLERS) {
      assert.deepEqual(planSampling({ sampler: SAMPLER_LABELS[id], steps: 7 }), planSampling({ sampler: id, steps: 7 }), id);
    }
  });

  it('the settings schema accepts ids and labels; resolveSettings turns a label into the id', () => {
    assert.deepEqual([...SAMPLER_CHOICES].sort(), [...new Set([...SAMPLERS, ...APP_LIST])].sort());
    for (const label of APP_LIST) {
      assert.equal(settingsSchema.parse({ sampler: label }).sampler, label);
      assert.equal(resolveSettings({ sampler: label }, manifest).settings.sampler, resolveSampler(label), label);
    }
    assert.equal(resolveSettings({ sampler: 'dpmpp_3m_sde' }, manifest).settings.sampler, 'dpmpp_3m_sde');
  });

  it('the settings refuse an unknown sampler naming settings.sampler and listing the choices', () => {
    for (const sampler of ['pndm', 'euler a', 'k_dpmpp_2m']) {
      assert.throws(
        () => resolveSettings({ sampler }, manifest),
        (e: unknown) => {
          assert.ok(isPipelineError(e));
          assert.equal(e.code, 'UNKNOWN_SAMPLER');
          assert.equal(e.field, 'settings.sampler');
          for (const choice of ['dpmpp_2m_sde', 'DPM++ 2M SDE', 'dpm_adaptive', 'DPM2 a']) assert.ok(e.message.includes(choice), `lists ${choice}: ${e.message}`);
          return true;
        },
        sampler,
      );
    }
  });

  it('the settings refuse DPM fast with 1 step naming settings.steps', () => {
    assert.throws(
      () => resolveSettings({ sampler: 'DPM fast', steps: 1 }, manifest),
      (e: unknown) => isPipelineError(e) && e.code === 'INVALID_KNOB' && e.field === 'settings.steps',
    );
  });
});

describe('scheduler aliases (the official app labels)', () => {
  // refnet/sampling/scheduler.py, in dropdown order; its lookup takes the name or the label.
  const APP_SCHEDULERS: Array<[string, SchedulerName]> = [
    ['Automatic', 'automatic'],
    ['Uniform', 'uniform'],
    ['Karras', 'karras'],
    ['Exponential', 'exponential'],
    ['Polyexponential', 'polyexponential'],
    ['SGM Uniform', 'sgm_uniform'],
  ];

  it('every app label resolves to its id, each id has exactly one label, exact spelling only', () => {
    for (const [label, id] of APP_SCHEDULERS) {
      assert.equal(resolveScheduler(label), id, label);
      assert.equal(resolveScheduler(id), id, id);
      assert.equal(SCHEDULER_LABELS[id], label);
    }
    assert.deepEqual([...SCHEDULERS].sort(), APP_SCHEDULERS.map(([, id]) => id).sort());
    assert.deepEqual([...SCHEDULER_CHOICES].sort(), [...SCHEDULERS, ...APP_SCHEDULERS.map(([label]) => label)].sort());
    for (const wrong of ['karras ', 'KARRAS', 'SGMUniform', 'sgm uniform', 'Simple']) assert.equal(resolveScheduler(wrong), undefined, wrong);
  });

  it('planSampling gives the same plan for a label as for the id, for every sampler', () => {
    for (const sampler of SAMPLERS) {
      for (const [label, id] of APP_SCHEDULERS) {
        const byLabel = planSampling({ sampler, scheduler: label, steps: 7 });
        assert.equal(byLabel.scheduler, id, `${sampler}/${label}`);
        assert.deepEqual(byLabel, planSampling({ sampler, scheduler: id, steps: 7 }), `${sampler}/${label}`);
      }
    }
    // The diffusers samplers with a Karras option take the label too.
    assert.equal(planSampling({ sampler: 'diffuser_dpm', scheduler: 'Karras' }).schedule, 'karras');
    assert.equal(planSampling({ sampler: 'diffuser_lms', scheduler: 'Karras' }).schedule, 'karras');
  });

  it('the settings schema accepts ids and labels; resolveSettings records the id', () => {
    for (const [label, id] of APP_SCHEDULERS) {
      assert.equal(settingsSchema.parse({ scheduler: label }).scheduler, label);
      const { settings } = resolveSettings({ scheduler: label, sampler: 'DPM++ 2M' }, manifest);
      assert.equal(settings.scheduler, id, label);
      assert.equal(resolvedSettingsSchema.parse(settings).scheduler, id);
    }
    assert.equal(resolvedSettingsSchema.safeParse({ ...resolveSettings({}, manifest).settings, scheduler: 'Karras' }).success, false, 'a record holds ids only');
  });

  it('the settings refuse an unknown scheduler naming settings.scheduler and listing the choices', () => {
    for (const scheduler of ['Simple', 'karras ', 'SGMUniform', 7]) {
      assert.throws(
        () => resolveSettings({ scheduler }, manifest),
        (e: unknown) => {
          assert.ok(isPipelineError(e));
          assert.equal(e.code, 'INVALID_KNOB');
          assert.equal(e.field, 'settings.scheduler');
          for (const choice of ['sgm_uniform', 'SGM Uniform', 'polyexponential', 'Karras']) assert.ok(e.message.includes(choice), `lists ${choice}: ${e.message}`);
          return true;
        },
        String(scheduler),
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The UNet timestep of every denoiser call.

describe('modelTimestep', () => {
  it('k-diffusion plans: σ→t of the call, also at the intermediate σ of two-stage samplers', async () => {
    for (const sampler of ['heun', 'dpm_2', 'dpm_2_ancestral', 'dpmpp_2s_ancestral', 'dpmpp_sde', 'dpm_fast', 'dpm_adaptive'] as const) {
      const plan = planSampling({ sampler, steps: 6 });
      const seen: Array<[number, number]> = [];
      const denoise: Denoiser<Float64Array> = (x, sigma, i) => {
        seen.push([sigma, modelTimestep(plan, sigma, i)]);
        return x.map((v) => v / (1 + sigma * sigma));
      };
      const x0 = Float64Array.from(gaussianNoise(9, 16), (e) => e * plan.initNoiseScale);
      await samplers[plan.method](denoise, x0, plan.sigmas, { noise: (k) => gaussianNoise(9, 16, k + 1) });
      if (sampler !== 'dpm_fast') assert.ok(seen.length > plan.steps, `${sampler}: more calls than steps`);
      // Heun's second call is at σ_{i+1}; the others evaluate between the plan's sigmas.
      if (sampler !== 'heun') assert.ok(seen.some(([sigma]) => !plan.sigmas.includes(sigma)), `${sampler}: off-plan σ`);
      for (const [sigma, t] of seen) {
        assert.equal(t, sigmaToT(sigma), sampler);
        assert.ok(t >= 0 && t <= 999, `${sampler}: t = ${t}`);
      }
    }
  });

  it('diffusers plans: their own timesteps[i], and a call off the plan is refused', () => {
    const plan = planSampling({ sampler: 'diffuser_dpm', steps: 20 });
    assert.equal(modelTimestep(plan, plan.sigmas[3], 3), plan.timesteps[3]);
    assert.equal(modelTimestep(plan, plan.sigmas[3], 3), 800);
    assert.throws(() => modelTimestep(plan, plan.sigmas[3] * 0.9, 3), RangeError);
    assert.throws(() => modelTimestep(plan, plan.sigmas[20], 20), RangeError);
    const k = planSampling({ sampler: 'dpmpp_2m', steps: 20 });
    assert.equal(modelTimestep(k, k.sigmas[5], 5), k.timesteps[5]);
  });
});

// ---------------------------------------------------------------------------------------------
// diffuser_lms: diffusers LMSDiscreteScheduler (leading, steps_offset 1, v_prediction, order 4),
// transcribed, against our plan run by `lms`.

/** numpy.linspace(start, stop, num): start + i·step, last = stop. */
function npLinspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  return Array.from({ length: num }, (_, i) => (i === num - 1 ? stop : start + i * step));
}

function diffusersLms(n: number, useKarras: boolean, noise: Vec, model: VModel): { trajectory: Vec[]; timesteps: number[]; sigmas: number[] } {
  const table = discreteSchedule().sigmas;
  const logSigmas = Array.from(table, (v) => Math.log(v));
  const sigmaToTDiffusers = (sigma: number): number => {
    const logSigma = Math.log(Math.max(sigma, 1e-10));
    let low_idx = 0;
    for (let i = 0; i < logSigmas.length; i++) if (logSigma - logSigmas[i] >= 0) low_idx = i; // cumsum(dists >= 0).argmax()
    low_idx = Math.min(low_idx, logSigmas.length - 2);
    const high_idx = low_idx + 1;
    const w = Math.min(Math.max((logSigmas[low_idx] - logSigma) / (logSigmas[low_idx] - logSigmas[high_idx]), 0), 1);
    return (1 - w) * low_idx + w * high_idx;
  };
  // set_timesteps, leading
  const step_ratio = Math.floor(1000 / n);
  let timesteps = Array.from({ length: n }, (_, i) => i * step_ratio).reverse().map((t) => t + 1);
  let sigmas = timesteps.map((t) => table[t]); // np.interp at integer points
  if (useKarras) {
    const sigma_min = sigmas[n - 1];
    const sigma_max = sigmas[0];
    const rho = 7;
    const ramp = npLinspace(0, 1, n);
    const min_inv_rho = sigma_min ** (1 / rho);
    const max_inv_rho = sigma_max ** (1 / rho);
    sigmas = ramp.map((r) => (max_inv_rho + r * (min_inv_rho - max_inv_rho)) ** rho);
    timesteps = sigmas.map((sg) => Math.fround(sigmaToTDiffusers(sg))); // float32 tensor
  }
  sigmas = [...sigmas, 0].map((v) => Math.fround(v)); // astype(np.float32)
  const init_noise_sigma = (Math.max(...sigmas) ** 2 + 1) ** 0.5;

  const get_lms_coefficient = (order: number, t: number, current_order: number): number => {
    const lms_derivative = (tau: number): number => {
      let prod = 1;
      for (let k = 0; k < order; k++) {
        if (current_order === k) continue;
        prod *= (tau - sigmas[t - k]) / (sigmas[t - current_order] - sigmas[t - k]);
      }
      return prod;
    };
    // integrate.quad stand-in: Simpson on 8 panels, exact for the cubic basis
    const a = sigmas[t];
    const b = sigmas[t + 1];
    const h = (b - a) / 8;
    let acc = lms_derivative(a) + lms_derivative(b);
    for (let k = 1; k < 8; k++) acc += (k % 2 ? 4 : 2) * lms_derivative(a + k * h);
    return (acc * h) / 3;
  };

  let sample = noise.map((e) => e * init_noise_sigma);
  const derivatives: Vec[] = [];
  const trajectory: Vec[] = [];
  for (let step_index = 0; step_index < n; step_index++) {
    const sigma = sigmas[step_index];
    const scaled = sample.map((v) => v / (sigma ** 2 + 1) ** 0.5); // scale_model_input
    const model_output = model(scaled, timesteps[step_index]);
    const pred_original_sample = model_output.map((m, j) => m * (-sigma / (sigma ** 2 + 1) ** 0.5) + sample[j] / (sigma ** 2 + 1));
    const derivative = sample.map((v, j) => (v - pred_original_sample[j]) / sigma);
    derivatives.push(derivative);
    if (derivatives.length > 4) derivatives.shift();
    const order = Math.min(step_index + 1, 4);
    const lms_coeffs = Array.from({ length: order }, (_, c) => get_lms_coefficient(order, step_index, c));
    const rev = derivatives.slice().reverse();
    sample = sample.map((v, j) => v + lms_coeffs.reduce((acc, c, k) => acc + c * rev[k][j], 0));
    trajectory.push(sample);
  }
  return { trajectory, timesteps, sigmas };
}

describe('diffuser_lms = diffusers LMSDiscreteScheduler', () => {
  const noise = Array.from(gaussianNoise(2025, N));
  for (const [scheduler, steps] of [
    ['automatic', 20],
    ['automatic', 7],
    ['automatic', 1],
    ['karras', 20],
    ['karras', 9],
    ['exponential', 5],
  ] as const) {
    it(`${scheduler}, ${steps} steps: same timesteps, sigmas and trajectory (1e-9)`, async () => {
      const plan = planSampling({ sampler: 'diffuser_lms', scheduler, steps });
      const ref = diffusersLms(steps, scheduler === 'karras', noise, toyV);
      assert.equal(plan.method, 'lms');
      assert.equal(plan.timestepMode, 'step');
      assert.equal(plan.schedule, scheduler === 'karras' ? 'karras' : 'leading');
      assert.deepEqual(Array.from(plan.timesteps), ref.timesteps);
      assert.deepEqual(Array.from(plan.sigmas), ref.sigmas);
      const ve = await runVE(plan, noise);
      for (let k = 0; k < steps; k++) assertRelClose(ve.trajectory[k], ref.trajectory[k], 1e-9, `step ${k}`);
    });
  }

  it('leading timesteps are the DDIM ones, ending at σ = 0', () => {
    for (const n of [1, 4, 20, 100]) {
      const lmsPlan = planSampling({ sampler: 'diffuser_lms', steps: n });
      assert.deepEqual(lmsPlan.timesteps, planSampling({ sampler: 'ddim', steps: n }).timesteps, `n=${n}`);
      assert.equal(lmsPlan.sigmas[n], 0);
      close(lmsPlan.initNoiseScale, Math.sqrt(lmsPlan.sigmas[0] ** 2 + 1), 1e-15);
    }
  });
});
