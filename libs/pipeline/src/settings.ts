/**
 * Resolving a request's settings against a pack, once, at the edge: the API's intake (and the
 * pipeline CLI, which has no farm) turns the request into {@link ResolvedSettings} — contract UI
 * defaults, then the pack's `defaults`, then the request; the output size fitted; the seed drawn;
 * the reference scales expanded; every rule that spans fields or needs the pack checked — and the
 * warnings the user must see. Everything after (queue, worker, inference thread, colorize())
 * takes the result as given. Unknown keys are refused, so a typo never becomes a silent default.
 *
 * Policy: a value the schema or the pack cannot take is refused, naming the field and the allowed
 * range (a 400 at submit); a size is only *fitted* — to the nearest multiple of the pack's
 * `size.multiple` — when that multiple lies within the pack's range, and the fit is a warning.
 */
import type { z } from 'zod';
import { PipelineError } from './errors.ts';
import type { RefMaskNetwork } from './pack/contract.ts';
import type { PackManifest } from './pack/schema.ts';
import { checkPackServes } from './requirements.ts';
import { planSampling } from './sampling/plan.ts';
import { MAX_SEED, REF_MASK_LABELS, settingsSchema, type ParsedSettings, type ResolvedSettings, type SettingsWarning } from './settings-schema.ts';

export * from './settings-schema.ts';

/**
 * What a resolution reads of a pack: its id, its size rules, its knob defaults, its graphs and
 * the network of its `ref_mask` (absent: the manifest's default, rmbg).
 */
export type PackRules = Pick<PackManifest, 'id' | 'version' | 'size' | 'defaults' | 'graphs'> & { inputs?: Pick<PackManifest['inputs'], 'refMaskNetwork'> };

export interface FrameSize {
  width: number;
  height: number;
}

/** What is known of the request's inputs when its settings are resolved. */
export interface ResolveOptions {
  /** A background image comes with the request (default false): `removeForeground` needs one. */
  background?: boolean;
  /**
   * The first frame's pixel size, when known: the output size unless the request gives one.
   * Unknown (a shot awaiting its uploads): the pack's default, `sizeFrom: 'pack'`.
   */
  frameSize?: FrameSize;
  /** Draws the seed when the request says −1 (default Math.random; inject for determinism). */
  random?: () => number;
}

export interface Resolution {
  settings: ResolvedSettings;
  /** Values adjusted or not used, in the order the knobs were checked; empty when none. */
  warnings: SettingsWarning[];
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

/**
 * Accurate mode with the app's off-by-one fixed: slider i drives layer i, and no strength is
 * applied (the app applies none either). The app passes sliders 1–15 to layers 0–14 and leaves
 * layer 15 as it was.
 */
export const accurateRefScales = (sliders: number[]): number[] => sliders.slice(0, 16);

/** The app's per-layer sliders at their defaults: 16 × 1. */
const SLIDER_DEFAULTS: readonly number[] = new Array<number>(16).fill(1);

/** Whether accurate mode is on: as asked, else exactly when per-layer scales are given. */
export const accurateMode = (s: Pick<ParsedSettings, 'accurate' | 'refScales'>): boolean => s.accurate ?? s.refScales !== undefined;

/** The 16 per-layer reference scales a request renders with (`ref_scales`, contract §5). */
export function resolveRefScales(
  s: Pick<ParsedSettings, 'accurate' | 'refScales' | 'referenceStrength' | 'encScale' | 'middleScale' | 'lowScale'>,
): number[] {
  if (accurateMode(s)) return accurateRefScales(s.refScales ?? [...SLIDER_DEFAULTS]);
  return uiRefScales({ strength: s.referenceStrength, enc: s.encScale, middle: s.middleScale, low: s.lowScale });
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
 * Validates `input` (unknown shape, e.g. from JSON) and resolves it for `pack`: the settings to
 * render with and the warnings to show. Throws a PipelineError naming the field (INVALID_KNOB,
 * UNKNOWN_SAMPLER, UNKNOWN_MODE, GRAPH_MISSING) for anything it cannot render.
 */
export function resolveSettings(input: unknown, pack: PackRules, options: ResolveOptions = {}): Resolution {
  if (input !== undefined && (typeof input !== 'object' || input === null || Array.isArray(input))) {
    throw new PipelineError('INVALID_KNOB', 'settings must be an object', 'settings');
  }
  const request = (input ?? {}) as Record<string, unknown>;
  const parsed = settingsSchema.safeParse({ ...pack.defaults, ...request });
  if (!parsed.success) throw zodToPipelineError(parsed.error, 'settings');
  const s = parsed.data;
  const background = options.background ?? false;
  const warnings: SettingsWarning[] = [];

  const size = outputSize(s, pack.size, options.frameSize, warnings);
  if (s.guidanceStart > s.guidanceEnd) {
    throw new PipelineError('INVALID_KNOB', `guidanceStart ${s.guidanceStart} is after guidanceEnd ${s.guidanceEnd}`, 'settings.guidanceStart');
  }
  if (s.removeForeground && !background) {
    throw new PipelineError(
      'INVALID_KNOB',
      "removeForeground whitens the background image's own foreground, and this request has no background image: send one, or leave removeForeground off",
      'settings.removeForeground',
    );
  }
  // The plan refuses what the schema cannot see (DPM fast/adaptive need 2 steps, PNDM 4) and turns
  // an app label ("DPM++ 2M SDE", "SGM Uniform") into our id.
  const { sampler, scheduler } = planSampling({ sampler: s.sampler, scheduler: s.scheduler, steps: s.steps });
  const random = options.random ?? Math.random;
  const settings: ResolvedSettings = {
    mode: s.mode,
    fgEnhance: s.fgEnhance,
    styleEnhance: s.mode === 'style' || s.mode === 'full',
    bgEnhance: s.mode === 'background' || s.mode === 'full',
    ...size,
    steps: s.steps,
    sampler,
    scheduler,
    seed: s.seed === -1 ? Math.floor(random() * (MAX_SEED + 1)) : s.seed,
    batchSize: s.batchSize,
    guidanceScale: s.guidanceScale,
    sketchGuidanceScale: s.sketchGuidanceScale,
    guidanceStart: s.guidanceStart,
    guidanceEnd: s.guidanceEnd,
    refScales: resolveRefScales(s),
    fgStrength: s.fgStrength,
    bgStrength: s.bgStrength,
    controlScale: s.controlScale,
    maskScale: s.maskScale,
    mergeScale: s.mergeScale,
    maskThresholdRef: s.maskThresholdRef,
    maskThresholdSketch: s.maskThresholdSketch,
    padScale: s.padScale,
    crop: s.crop,
    removeForeground: s.removeForeground,
    removeBackground: s.removeBackground,
    preprocessor: s.preprocessor,
    lineExtractor: s.lineExtractor,
    referenceMaskExtractor: s.referenceMaskExtractor ? (REF_MASK_LABELS[s.referenceMaskExtractor] ?? (s.referenceMaskExtractor as RefMaskNetwork)) : (pack.inputs?.refMaskNetwork ?? 'rmbg'),
    injection: s.injection,
    injectionFidelitySketch: s.injectionFidelitySketch,
    injectionFidelityReference: s.injectionFidelityReference,
    injectionStartStep: s.injectionStartStep,
  };
  checkPackServes(pack, settings);
  warnings.push(...unusedKnobs(request, settings, background, accurateMode(s)));
  return { settings, warnings };
}

/**
 * Settings resolved before the first frame's size was known (`sizeFrom: 'pack'`), given the size
 * that frame sets — fitted to the pack, with a warning added when it had to be. A resolution whose
 * size came from the request or the frames is returned as it is.
 */
export function withFrameSize(resolved: Resolution, frame: FrameSize, pack: Pick<PackManifest, 'size'>): Resolution {
  if (resolved.settings.sizeFrom !== 'pack') return resolved;
  const warnings = [...resolved.warnings];
  return { settings: { ...resolved.settings, ...fittedFrameSize(frame, pack.size, warnings), sizeFrom: 'frames' }, warnings };
}

type SizeRules = PackManifest['size'];
type OutputSize = Pick<ResolvedSettings, 'width' | 'height' | 'sizeFrom'>;

const rangeOf = ({ multiple, min, max }: SizeRules) => `multiples of ${multiple} within ${min}–${max}`;

/** Width and height as asked (both or neither), else the first frame's, else the pack's default. */
function outputSize(s: ParsedSettings, rules: SizeRules, frame: FrameSize | undefined, warnings: SettingsWarning[]): OutputSize {
  if (s.width === undefined && s.height === undefined) {
    if (!frame) return { width: rules.default, height: rules.default, sizeFrom: 'pack' };
    return { ...fittedFrameSize(frame, rules, warnings), sizeFrom: 'frames' };
  }
  if (s.width === undefined || s.height === undefined) {
    const [missing, given] = s.width === undefined ? ['width', 'height'] : ['height', 'width'];
    throw new PipelineError('INVALID_KNOB', `give ${missing} with ${given}, or neither (the output then takes the frames' size)`, `settings.${missing}`);
  }
  return { width: askedSize(s.width, 'width', rules, warnings), height: askedSize(s.height, 'height', rules, warnings), sizeFrom: 'request' };
}

/** A requested size: the nearest multiple, with a warning when it moved; refused outside the range. */
function askedSize(v: number, name: 'width' | 'height', rules: SizeRules, warnings: SettingsWarning[]): number {
  const fitted = Math.round(v / rules.multiple) * rules.multiple;
  if (fitted < rules.min || fitted > rules.max) {
    throw new PipelineError('INVALID_KNOB', `${name} ${v} is outside this pack's range: ${rangeOf(rules)}`, `settings.${name}`);
  }
  if (fitted !== v) {
    warnings.push({ code: 'SIZE_FITTED', field: `settings.${name}`, message: `${name} ${v} is not a multiple of ${rules.multiple}; rendering ${fitted}` });
  }
  return fitted;
}

/**
 * The first frame's size fitted to the pack: scaled (aspect kept) into the range when a side is
 * outside it, then each side rounded to the multiple. A warning when the result differs.
 */
function fittedFrameSize(frame: FrameSize, rules: SizeRules, warnings: SettingsWarning[]): FrameSize {
  const { multiple, min, max } = rules;
  const long = Math.max(frame.width, frame.height);
  const short = Math.min(frame.width, frame.height);
  const k = long > max ? max / long : short < min ? min / short : 1;
  const fit = (v: number) => Math.min(max, Math.max(min, Math.round((v * k) / multiple) * multiple));
  const size = { width: fit(frame.width), height: fit(frame.height) };
  if (size.width !== frame.width || size.height !== frame.height) {
    warnings.push({
      code: 'SIZE_FITTED',
      field: size.width !== frame.width ? 'settings.width' : 'settings.height',
      message: `the frames are ${frame.width}×${frame.height}; rendering ${size.width}×${size.height} (this pack renders ${rangeOf(rules)})`,
    });
  }
  return size;
}

/** Where a knob has an effect; the reason is given when it has none. */
type Use = [key: keyof ParsedSettings, used: boolean, why: string];

const CONTRACT_DEFAULTS: Record<string, unknown> = settingsSchema.parse({});

/**
 * Knobs the request set (to other than the contract default) that these settings never read, and
 * a background image nothing reads: each an `IGNORED` warning naming it and why.
 */
function unusedKnobs(request: Record<string, unknown>, s: ResolvedSettings, background: boolean, accurate: boolean): SettingsWarning[] {
  const split = s.bgEnhance || s.fgEnhance;
  const noSplit = `mode ${s.mode} without fgEnhance has no split attention (modes background and full, or fgEnhance, have)`;
  const uses: Use[] = [
    ['fgStrength', split, noSplit],
    ['bgStrength', split, noSplit],
    ['maskThresholdSketch', split, noSplit],
    ['mergeScale', split || (s.styleEnhance && background), `${noSplit}, and no background image is mixed into a style`],
    ['maskScale', s.bgEnhance, `it scales the background features of BG enhance, which mode ${s.mode} does not run`],
    [
      'maskThresholdRef',
      s.removeBackground || (s.bgEnhance && !background) || (split && s.removeForeground),
      'no reference mask is thresholded (removeBackground, BG enhance without a background image, or removeForeground use it)',
    ],
    ['removeForeground', split, `${noSplit}; the background's foreground is only removed for it`],
    ['lineExtractor', s.preprocessor === 'extract', `preprocessor ${s.preprocessor} runs no line extractor (extract does)`],
    ['refScales', accurate, 'accurate is false: referenceStrength and the level scales set the layers (the app ignores its per-layer sliders then)'],
    ['disentangleScale', false, 'the official v2 app passes it to no computation, and neither does celfarm'],
    ['referenceMaskExtractor', s.removeBackground || split, `no reference mask is computed (${noSplit}, and removeBackground is off)`],
    ['injectionFidelitySketch', s.injection, 'injection is off'],
    ['injectionFidelityReference', s.injection, 'injection is off'],
    ['injectionStartStep', s.injection, 'injection is off'],
  ];
  if (accurate) {
    for (const key of ['referenceStrength', 'encScale', 'middleScale', 'lowScale'] as const) {
      uses.push([key, false, 'accurate mode: refScales sets every layer']);
    }
  }
  const warnings: SettingsWarning[] = uses
    .filter(([key, used]) => !used && request[key] !== undefined && request[key] !== CONTRACT_DEFAULTS[key])
    .map(([key, , why]) => ({ code: 'IGNORED', field: `settings.${key}`, message: `${key} ${JSON.stringify(request[key])} has no effect: ${why}` }));
  // Contract §2.2: the background feeds BG enhance, the style (mixed by mergeScale), and FG enhance's tokens with style on.
  if (background && !(s.bgEnhance || (s.styleEnhance && (s.mergeScale > 0 || s.fgEnhance)))) {
    const why = s.styleEnhance ? 'with mergeScale 0 the style ignores it' : `mode ${s.mode} does not read it`;
    warnings.push({ code: 'IGNORED', field: 'background', message: `the background image has no effect: ${why} (modes background and full use it)` });
  }
  return warnings;
}
