/**
 * The knobs of a colorize request (contract §5), validated once by a zod schema with ranges and
 * defaults. Pack defaults (`pack.json` `defaults`) sit between the contract's UI defaults and the
 * request. Unknown keys are refused, so a typo never becomes a silent default.
 */
import { z } from 'zod';
import { PipelineError } from './errors.ts';
import { LINE_EXTRACTORS } from './pack/contract.ts';
import type { PackManifest } from './pack/schema.ts';
import { planSampling, SAMPLER_CHOICES, SCHEDULERS } from './sampling/index.ts';

export const MODES = ['vanilla', 'style', 'background', 'full'] as const;
export type Mode = (typeof MODES)[number];
export const PREPROCESSORS = ['invert', 'none', 'extract', 'invert-webui'] as const;
export const MAX_SEED = 429_496_729;

const unit = (d: number) => z.number().min(0).max(1).default(d);

/** Request settings. Field docs give the app's UI label, default and range. */
export const settingsSchema = z.strictObject({
  /** vanilla | style (Style enhance) | background (BG enhance, mask guided) | full (style + background). */
  mode: z.enum(MODES).default('vanilla'),
  /** FG enhance: split attention without warp injection (documented as near-useless for v2). */
  fgEnhance: z.boolean().default(false),
  /** Output width/height in pixels; fitted to the pack's multiple (64) with a warning. */
  width: z.number().int().positive().optional(),
  height: z.number().int().positive().optional(),
  /** Sampler steps, 1–100 (UI "Step", default 20). */
  steps: z.number().int().min(1).max(100).default(20),
  /** Our sampler id or the app's label for it ("DPM++ 2M SDE" = dpmpp_2m_sde); see SAMPLER_LABELS. */
  sampler: z.enum(SAMPLER_CHOICES).default('diffuser_dpm'),
  scheduler: z.enum(SCHEDULERS).default('automatic'),
  /** −1 = random (resolved and reported), else 0…429 496 729. */
  seed: z.number().int().min(-1).max(MAX_SEED).default(-1),
  /** Images per request (UI "Batch size"), 1–8; item k uses noise stream k of the seed. */
  batchSize: z.number().int().min(1).max(8).default(1),
  /** Reference guidance scale gs_r, 1–15 (default 4); CFG on the reference when > 1. */
  guidanceScale: z.number().min(1).max(15).default(4),
  /** Sketch guidance scale gs_s, 1–5 (default 1); CFG on the sketch when > 1. */
  sketchGuidanceScale: z.number().min(1).max(5).default(1),
  /** Guidance window on relative progress tr = 1 − t/999 (not sticky, see README). */
  guidanceStart: unit(0),
  guidanceEnd: unit(1),
  /** Reference strength s, 0–1: multiplies the encoder/middle/low cross-attention scales. */
  referenceStrength: unit(1),
  encScale: unit(1),
  middleScale: unit(1),
  lowScale: unit(1),
  /** Explicit per-layer reference scales (16, each 0–1); overrides the four knobs above. */
  refScales: z.array(z.number().min(0).max(1)).length(16).optional(),
  /** Foreground / background strength of the split attention, 0–1. */
  fgStrength: unit(1),
  bgStrength: unit(1),
  /** Sketch strength: multiplies every control hint, 0–3. */
  controlScale: z.number().min(0).max(3).default(1),
  /** Background factor: multiplies hs_bg, 0–2. */
  maskScale: z.number().min(0).max(2).default(1),
  /** Merging scale, 0–1: style mix reference↔background and background into foreground attention. */
  mergeScale: unit(0),
  /** Reference mask threshold (white-out, remove foreground, remove background). */
  maskThresholdRef: unit(0.5),
  /** Sketch mask threshold (split attention and skip injection). */
  maskThresholdSketch: unit(0.05),
  /** Horizontal white padding of reference and background, 1–2. */
  padScale: z.number().min(1).max(2).default(1),
  /** Crop the letterbox off the result. */
  crop: z.boolean().default(false),
  /** Whiten the background image's own foreground before use (needs a background image). */
  removeForeground: z.boolean().default(false),
  /** Whiten the result's background using the reference-mask graph. */
  removeBackground: z.boolean().default(false),
  /**
   * Sketch preprocessor: invert (black-on-white drawings, the app default), none (already
   * white-on-black), extract (a line-extractor graph), invert-webui (the web UI's "lineart standard").
   */
  preprocessor: z.enum(PREPROCESSORS).default('invert'),
  /** Line extractor for preprocessor "extract"; must be a graph of the pack. */
  lineExtractor: z.enum(LINE_EXTRACTORS).default('lineart_keras'),
});

export type SettingsInput = z.input<typeof settingsSchema>;
export type ParsedSettings = z.output<typeof settingsSchema>;

/** Settings after resolution against a pack: size fitted, seed resolved, scales expanded. */
export interface Settings extends Omit<ParsedSettings, 'width' | 'height' | 'refScales'> {
  width: number;
  height: number;
  refScales: number[];
  styleEnhance: boolean;
  bgEnhance: boolean;
  /** Notes for the user about values that were adjusted (never silent). */
  warnings: string[];
}

/**
 * The app's slider mapping (contract §5, "fresh model" semantics): layers 0,1 = enc·s;
 * 2,3 = middle·s; 4,5 = low·s; 7–9 = low·s; 10–12 = middle·s; layers 6 and 13–15 stay 1.
 */
export function uiRefScales(o: { strength: number; enc: number; middle: number; low: number }): number[] {
  const s = o.strength;
  const scales = new Array<number>(16).fill(1);
  scales[0] = scales[1] = o.enc * s;
  scales[2] = scales[3] = o.middle * s;
  scales[4] = scales[5] = o.low * s;
  scales[7] = scales[8] = scales[9] = o.low * s;
  scales[10] = scales[11] = scales[12] = o.middle * s;
  return scales;
}

/** Accurate mode with the app's off-by-one fixed: slider i drives layer i. */
export const accurateRefScales = (sliders: number[]): number[] => sliders.slice(0, 16);

function fitToMultiple(v: number, m: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.round(v / m) * m));
}

/** Turns a zod failure into a PipelineError naming the first field (all issues in the message). */
export function zodToPipelineError(error: z.ZodError, prefix: string): PipelineError {
  const issues = error.issues.map((i) => `${[prefix, ...i.path].join('.')}: ${i.message}`);
  const first = error.issues[0];
  const field = [prefix, ...(first?.path ?? [])].join('.');
  const code = first?.path[0] === 'sampler' ? 'UNKNOWN_SAMPLER' : first?.path[0] === 'mode' ? 'UNKNOWN_MODE' : 'INVALID_KNOB';
  const keys = first && first.code === 'unrecognized_keys' ? `.${(first as { keys: string[] }).keys.join(',')}` : '';
  return new PipelineError(code, issues.join('; '), field + keys);
}

/**
 * Validates `input` (unknown shape, e.g. from JSON) and resolves it for `pack`.
 * `random` supplies a seed when seed = −1 (inject for determinism in tests).
 */
export function resolveSettings(
  input: unknown,
  pack: PackManifest,
  random: () => number = Math.random,
): Settings {
  if (input !== undefined && (typeof input !== 'object' || input === null || Array.isArray(input))) {
    throw new PipelineError('INVALID_KNOB', 'settings must be an object', 'settings');
  }
  const merged = { ...pack.defaults, ...(input as Record<string, unknown> | undefined) };
  const parsed = settingsSchema.safeParse(merged);
  if (!parsed.success) throw zodToPipelineError(parsed.error, 'settings');
  const s = parsed.data;
  const warnings: string[] = [];
  const { multiple, min, max, default: def } = pack.size;
  const size = (v: number | undefined, name: 'width' | 'height'): number => {
    if (v === undefined) return def;
    const fitted = fitToMultiple(v, multiple, min, max);
    if (fitted !== v) warnings.push(`${name} ${v} is not a multiple of ${multiple} within ${min}–${max}; using ${fitted}`);
    return fitted;
  };
  const width = size(s.width, 'width');
  const height = size(s.height, 'height');
  const seed = s.seed === -1 ? Math.floor(random() * (MAX_SEED + 1)) : s.seed;
  const refScales =
    s.refScales ?? uiRefScales({ strength: s.referenceStrength, enc: s.encScale, middle: s.middleScale, low: s.lowScale });
  if (s.guidanceStart > s.guidanceEnd) {
    throw new PipelineError('INVALID_KNOB', `guidanceStart ${s.guidanceStart} is after guidanceEnd ${s.guidanceEnd}`, 'settings.guidanceStart');
  }
  // The plan refuses what the schema cannot see (DPM fast/adaptive need 2 steps) and turns an app
  // label ("DPM++ 2M SDE") into our id.
  const { sampler } = planSampling({ sampler: s.sampler, scheduler: s.scheduler, steps: s.steps });
  return {
    ...s,
    sampler,
    width,
    height,
    seed,
    refScales,
    styleEnhance: s.mode === 'style' || s.mode === 'full',
    bgEnhance: s.mode === 'background' || s.mode === 'full',
    warnings,
  };
}
