/**
 * The settings of a colorize request (contract §5) as data: what a request may say
 * ({@link settingsSchema}, ranges and defaults), what a request becomes once resolved against a
 * pack ({@link resolvedSettingsSchema}: every value explicit, the type every stage after the
 * edge takes), and the warnings a resolution hands back to the user. zod and constants only: the
 * shot record, the wire contract and the dashboard bundle import this module.
 */
import { z } from 'zod';
import { LINE_EXTRACTORS, REF_MASK_NETWORKS, type RefMaskNetwork } from './pack/contract.ts';
import { SAMPLER_CHOICES, SAMPLERS, SCHEDULER_CHOICES, SCHEDULERS } from './sampling/names.ts';

export const MODES = ['vanilla', 'style', 'background', 'full'] as const;
export type Mode = (typeof MODES)[number];
export const PREPROCESSORS = ['invert', 'none', 'extract', 'invert-webui'] as const;
export const MAX_SEED = 429_496_729;
/** The app's "Reference mask extractor" labels and the network each names. */
export const REF_MASK_LABELS: Record<string, RefMaskNetwork> = { 'rmbg-v2': 'rmbg', ISNet: 'isnet' };
export const REF_MASK_CHOICES = [...REF_MASK_NETWORKS, ...Object.keys(REF_MASK_LABELS)] as [string, ...string[]];

/** Each knob's type and range, once; the request schema adds defaults, the resolved one does not. */
const unit = z.number().min(0).max(1);
const knob = {
  mode: z.enum(MODES),
  fgEnhance: z.boolean(),
  size: z.number().int().positive(),
  steps: z.number().int().min(1).max(100),
  scheduler: z.enum(SCHEDULERS),
  batchSize: z.number().int().min(1).max(8),
  guidanceScale: z.number().min(1).max(15),
  sketchGuidanceScale: z.number().min(1).max(5),
  unit,
  refScales: z.array(unit).length(16),
  controlScale: z.number().min(0).max(3),
  maskScale: z.number().min(0).max(2),
  padScale: z.number().min(1).max(2),
  flag: z.boolean(),
  preprocessor: z.enum(PREPROCESSORS),
  lineExtractor: z.enum(LINE_EXTRACTORS),
  injectionControl: z.number().min(0).max(2),
};

/** Request settings. Field docs give the app's UI label, default and range. */
export const settingsSchema = z.strictObject({
  /** vanilla | style (Style enhance) | background (BG enhance, mask guided) | full (style + background). */
  mode: knob.mode.default('vanilla'),
  /** FG enhance: split attention without warp injection (documented as near-useless for v2). */
  fgEnhance: knob.fgEnhance.default(false),
  /**
   * Output width/height in pixels, both or neither (neither: the first frame's size, fitted to the
   * pack). Rounded to the pack's multiple with a warning; refused when that lies outside its range.
   */
  width: knob.size.optional(),
  height: knob.size.optional(),
  /** Sampler steps, 1–100 (UI "Step", default 20). */
  steps: knob.steps.default(20),
  /** Our sampler id or the app's label for it ("DPM++ 2M SDE" = dpmpp_2m_sde); see SAMPLER_LABELS. */
  sampler: z.enum(SAMPLER_CHOICES).default('diffuser_dpm'),
  /**
   * Noise scheduler (sigma schedule): our id or the app's label for it ("SGM Uniform" = sgm_uniform);
   * see SCHEDULER_LABELS. Resolved to the id.
   */
  scheduler: z.enum(SCHEDULER_CHOICES).default('automatic'),
  /** −1 = random (resolved and reported), else 0…429 496 729. */
  seed: z.number().int().min(-1).max(MAX_SEED).default(-1),
  /**
   * Images per request (UI "Batch size"), 1–8. Item k's noise — initial and every per-step draw of
   * the ancestral/SDE samplers — depends only on (seed, k), so item k is the same in any batch.
   */
  batchSize: knob.batchSize.default(1),
  /** Reference guidance scale gs_r, 1–15 (default 4); CFG on the reference when > 1. */
  guidanceScale: knob.guidanceScale.default(4),
  /** Sketch guidance scale gs_s, 1–5 (default 1); CFG on the sketch when > 1. */
  sketchGuidanceScale: knob.sketchGuidanceScale.default(1),
  /** Guidance window on relative progress tr = 1 − t/999 (not sticky, see README). */
  guidanceStart: unit.default(0),
  guidanceEnd: unit.default(1),
  /** Reference strength s, 0–1: multiplies the encoder/middle/low cross-attention scales. */
  referenceStrength: unit.default(1),
  encScale: unit.default(1),
  middleScale: unit.default(1),
  lowScale: unit.default(1),
  /**
   * Per-layer reference scales (16, each 0–1): the app's "accurate crossattn control" sliders
   * "0.down0.attn0" … "15.up0.attn2", layer i from entry i. They override the four knobs above
   * whenever accurate mode is on.
   */
  refScales: knob.refScales.optional(),
  /**
   * "Activate accurate crossattn control": `refScales` (16 × 1 when not given, the sliders'
   * defaults) sets every layer and referenceStrength/encScale/middleScale/lowScale are not applied,
   * as in the app. Not given: on exactly when `refScales` is given. `false` with `refScales`: the
   * sliders are ignored, as the app ignores them with the box unticked. The app's off-by-one
   * (layer i took slider i + 1, layer 15 none) is not reproduced.
   */
  accurate: knob.flag.optional(),
  /**
   * "Disentangle scale", 0–1 (default 1). Accepted so that a request mirroring the app is valid;
   * the official v2 app hands it to no computation (swallowed by a **kwargs), so neither do we:
   * any other value gets an IGNORED warning.
   */
  disentangleScale: unit.default(1),
  /** Foreground / background strength of the split attention, 0–1. */
  fgStrength: unit.default(1),
  bgStrength: unit.default(1),
  /** Sketch strength: multiplies every control hint, 0–3. */
  controlScale: knob.controlScale.default(1),
  /** Background factor: multiplies hs_bg, 0–2. */
  maskScale: knob.maskScale.default(1),
  /** Merging scale, 0–1: style mix reference↔background and background into foreground attention. */
  mergeScale: unit.default(0),
  /** Reference mask threshold (white-out, remove foreground, remove background). */
  maskThresholdRef: unit.default(0.5),
  /** Sketch mask threshold (split attention and skip injection). */
  maskThresholdSketch: unit.default(0.05),
  /** Horizontal white padding of reference and background, 1–2. */
  padScale: knob.padScale.default(1),
  /** Crop the letterbox off the result. */
  crop: knob.flag.default(false),
  /** Whiten the background image's own foreground before use (needs a background image). */
  removeForeground: knob.flag.default(false),
  /** Whiten the result's background using the reference-mask graph. */
  removeBackground: knob.flag.default(false),
  /**
   * Sketch preprocessor: invert (black-on-white drawings, the app default), none (already
   * white-on-black), extract (a line-extractor graph), invert-webui (the web UI's "lineart standard").
   */
  preprocessor: knob.preprocessor.default('invert'),
  /** Line extractor for preprocessor "extract"; must be a graph of the pack. */
  lineExtractor: knob.lineExtractor.default('lineart_keras'),
  /**
   * "Reference mask extractor": rmbg (RMBG-2.0, the app's `rmbg-v2`) or isnet (ISNet anime
   * segmentation, `ISNet`) for the reference/background mask and background removal. Not given:
   * the network of the pack's `ref_mask`. The other one needs its graph `ref_mask_<network>`.
   */
  referenceMaskExtractor: z.enum(REF_MASK_CHOICES).optional(),
  /**
   * "Attention injection": every UNet call from the start step on is preceded by a pass over the
   * noised reference whose self-attention inputs the real call attends to as well (about 2× the
   * sampling time). Needs the pack's `unet_inject` graph. docs/attention-injection.md.
   */
  injection: knob.flag.default(false),
  /** "Injection fidelity (sketch)", 0–2: the reference's own line hints in that pass (0: none). */
  injectionFidelitySketch: knob.injectionControl.default(0),
  /** "Injection fidelity (reference)", 0–1: the reference-unconditional entries' share of plain self-attention. */
  injectionFidelityReference: unit.default(0.5),
  /** "Injection start step", 0–1: relative step (tr = 1 − t/999) from which injection runs. */
  injectionStartStep: unit.default(0),
});

export type SettingsInput = z.input<typeof settingsSchema>;
export type ParsedSettings = z.output<typeof settingsSchema>;

/**
 * Where the output size came from: `request` (width and height given), `frames` (the first
 * frame's size, fitted to the pack), or `pack` (the pack's default: no frame was known when the
 * settings were resolved — a shot awaiting its uploads takes its frames' size at start).
 */
export const SIZE_SOURCES = ['request', 'frames', 'pack'] as const;

/**
 * Settings resolved against a pack: every knob explicit, the size fitted, the seed drawn, the
 * sampler an id, the reference scales expanded to 16, every cross-field rule checked. What was
 * rendered, as shot.json records it. No defaults here: a record missing a value is an error.
 */
export const resolvedSettingsSchema = z.strictObject({
  mode: knob.mode,
  fgEnhance: knob.fgEnhance,
  /** Style enhance on (mode style or full). */
  styleEnhance: z.boolean(),
  /** BG enhance on (mode background or full). */
  bgEnhance: z.boolean(),
  width: knob.size,
  height: knob.size,
  sizeFrom: z.enum(SIZE_SOURCES),
  steps: knob.steps,
  sampler: z.enum(SAMPLERS),
  scheduler: knob.scheduler,
  /** The shot's base seed; frame k renders with seed + k − 1. */
  seed: z.number().int().min(0).max(MAX_SEED),
  batchSize: knob.batchSize,
  guidanceScale: knob.guidanceScale,
  sketchGuidanceScale: knob.sketchGuidanceScale,
  guidanceStart: unit,
  guidanceEnd: unit,
  /**
   * Per-layer reference scales: in accurate mode `refScales` as given (16 × 1 when not), else
   * referenceStrength × enc/middle/low mapped as the app does. `accurate` and `disentangleScale`
   * leave no other trace: this is all they change.
   */
  refScales: knob.refScales,
  fgStrength: unit,
  bgStrength: unit,
  controlScale: knob.controlScale,
  maskScale: knob.maskScale,
  mergeScale: unit,
  maskThresholdRef: unit,
  maskThresholdSketch: unit,
  padScale: knob.padScale,
  crop: knob.flag,
  removeForeground: knob.flag,
  removeBackground: knob.flag,
  preprocessor: knob.preprocessor,
  lineExtractor: knob.lineExtractor,
  /** The reference-mask network; absent in records older than the knob: the pack's `ref_mask`. */
  referenceMaskExtractor: z.enum(REF_MASK_NETWORKS).optional(),
  // Added after records existed: a shot stored before them rendered without injection, so its
  // record reads with injection off and the app's defaults.
  injection: knob.flag.default(false),
  injectionFidelitySketch: knob.injectionControl.default(0),
  injectionFidelityReference: unit.default(0.5),
  injectionStartStep: unit.default(0),
});
export type ResolvedSettings = z.output<typeof resolvedSettingsSchema>;

/**
 * `SIZE_FITTED`: the output size differs from what was asked or what the frames are (rounded to
 * the pack's multiple, scaled into its range). `IGNORED`: a knob (or the background image) has no
 * effect with these settings.
 */
export const SETTINGS_WARNING_CODES = ['SIZE_FITTED', 'IGNORED'] as const;

/** A value the farm adjusted or will not use: never silent, returned at submit and kept on the shot. */
export const settingsWarningSchema = z.object({
  code: z.enum(SETTINGS_WARNING_CODES),
  /** What it is about: `settings.width`, `settings.mergeScale`, `background`. */
  field: z.string(),
  message: z.string(),
});
export type SettingsWarning = z.output<typeof settingsWarningSchema>;
