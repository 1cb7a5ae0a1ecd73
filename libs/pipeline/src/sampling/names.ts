/**
 * The names a request may give a sampler and a scheduler: our ids, the app's dropdown labels,
 * and the schedules. Constants only, so the settings schema (and the wire contract, which a
 * browser bundles) can name them without the sampling code.
 */
export const SAMPLERS = [
  'diffuser_dpm',
  'dpmpp_2m',
  'euler',
  'euler_ancestral',
  'ddim',
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
  'diffuser_lms',
  'diffuser_pndm',
] as const;
export type SamplerName = (typeof SAMPLERS)[number];

export const SCHEDULERS = ['automatic', 'karras', 'exponential', 'uniform', 'polyexponential', 'sgm_uniform'] as const;
export type SchedulerName = (typeof SCHEDULERS)[number];

/**
 * The official app's "Noise scheduler" labels of our schedulers (`refnet/sampling/scheduler.py`,
 * whose lookup takes the name or the label); each label is accepted as an alias.
 */
export const SCHEDULER_LABELS = {
  automatic: 'Automatic',
  karras: 'Karras',
  exponential: 'Exponential',
  uniform: 'Uniform',
  polyexponential: 'Polyexponential',
  sgm_uniform: 'SGM Uniform',
} as const satisfies Record<SchedulerName, string>;
export type SchedulerLabel = (typeof SCHEDULER_LABELS)[SchedulerName];
export type SchedulerChoice = SchedulerName | SchedulerLabel;

/** Every accepted `scheduler` value: our ids, then the app's labels. */
export const SCHEDULER_CHOICES: readonly SchedulerChoice[] = [...SCHEDULERS, ...SCHEDULERS.map((id) => SCHEDULER_LABELS[id])];

/** The official app's dropdown labels of our samplers; each label is accepted as an alias. */
export const SAMPLER_LABELS = {
  diffuser_dpm: 'diffuser_dpm',
  dpmpp_2m: 'DPM++ 2M',
  euler: 'Euler',
  euler_ancestral: 'Euler a',
  ddim: 'diffuser_ddim',
  heun: 'Heun',
  dpm_2: 'DPM2',
  dpm_2_ancestral: 'DPM2 a',
  lms: 'LMS',
  dpmpp_2s_ancestral: 'DPM++ 2S a',
  dpmpp_sde: 'DPM++ SDE',
  dpmpp_2m_sde: 'DPM++ 2M SDE',
  dpmpp_2m_sde_heun: 'DPM++ 2M SDE Heun',
  dpmpp_3m_sde: 'DPM++ 3M SDE',
  dpm_fast: 'DPM fast',
  dpm_adaptive: 'DPM adaptive',
  diffuser_lms: 'diffuser_lms',
  diffuser_pndm: 'diffuser_pndm',
} as const satisfies Record<SamplerName, string>;
export type SamplerLabel = (typeof SAMPLER_LABELS)[SamplerName];
export type SamplerChoice = SamplerName | SamplerLabel;

/** Every accepted `sampler` value: our ids, then the app's labels that differ from them. */
export const SAMPLER_CHOICES: readonly SamplerChoice[] = [
  ...SAMPLERS,
  ...SAMPLERS.map((id) => SAMPLER_LABELS[id]).filter((label) => !(SAMPLERS as readonly string[]).includes(label)),
];
