/**
 * Pipeline knobs as CLI flags, built from the pipeline's own `settingsSchema` (imported from its
 * settings module only, which does not load onnxruntime): `steps` → `--steps <n>`, `fgEnhance` →
 * `--fg-enhance` / `--no-fg-enhance`, `refScales` → `--ref-scales <list>`, enums with their choices
 * in the help. Values are checked by the same schema before anything is sent, so a bad knob is
 * refused naming the field (`settings.steps`) exactly as the API would.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { settingsSchema, zodToPipelineError } from '@celfarm/pipeline/settings';
import { InputError } from './api.ts';

/** The parts of a zod 4 schema this module reads (structural, so the CLI needs no zod import). */
interface SchemaNode {
  type: string;
  def: { innerType?: SchemaNode; defaultValue?: unknown; element?: SchemaNode };
  options?: readonly string[];
}

export const KNOB_HELP: Record<string, string> = {
  mode: 'Style / BG enhance',
  fgEnhance: 'FG enhance: split attention only',
  width: 'output width in px (fitted to the pack multiple; default from the pack)',
  height: 'output height in px',
  steps: 'sampler steps 1–100',
  sampler: 'sampler',
  scheduler: 'sigma schedule',
  seed: 'seed, −1 = random (resolved by the API)',
  batchSize: 'images per frame 1–8',
  guidanceScale: 'reference guidance scale 1–15',
  sketchGuidanceScale: 'sketch guidance scale 1–5',
  guidanceStart: 'reference guidance window start 0–1',
  guidanceEnd: 'reference guidance window end 0–1',
  referenceStrength: 'reference strength 0–1',
  encScale: 'encoder cross-attention scale 0–1',
  middleScale: 'colour (middle) cross-attention scale 0–1',
  lowScale: 'semantics (low) cross-attention scale 0–1',
  refScales: '16 comma-separated per-layer reference scales (overrides the four above)',
  fgStrength: 'foreground strength 0–1',
  bgStrength: 'background strength 0–1',
  controlScale: 'sketch strength 0–3',
  maskScale: 'background factor 0–2',
  mergeScale: 'merging scale 0–1',
  maskThresholdRef: 'reference mask threshold 0–1',
  maskThresholdSketch: 'sketch mask threshold 0–1',
  padScale: 'reference padding scale 1–2',
  crop: 'crop the letterbox off the result',
  removeForeground: "whiten the background image's own foreground",
  removeBackground: "whiten the result's background",
  preprocessor: 'sketch preprocessor',
  lineExtractor: 'line extractor for --preprocessor extract',
};

export const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function numberArg(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${flag} must be a number`);
    return n;
  };
}

function unwrap(node: SchemaNode): { inner: SchemaNode; defaultValue?: unknown } {
  let inner = node;
  let defaultValue: unknown;
  while ((inner.type === 'default' || inner.type === 'optional') && inner.def.innerType) {
    if (inner.type === 'default') defaultValue = inner.def.defaultValue;
    inner = inner.def.innerType;
  }
  return { inner, defaultValue };
}

export const KNOB_KEYS: readonly string[] = Object.keys(settingsSchema.shape);

/** Adds one option per settings key, typed from the schema. */
export function addKnobOptions(cmd: Command): void {
  for (const [key, field] of Object.entries(settingsSchema.shape)) {
    const { inner, defaultValue } = unwrap(field as unknown as SchemaNode);
    const flag = `--${kebab(key)}`;
    let help = KNOB_HELP[key] ?? key;
    if (defaultValue !== undefined) help += ` (default ${String(defaultValue)})`;
    if (inner.type === 'boolean') {
      cmd.addOption(new Option(flag, help));
      cmd.addOption(new Option(`--no-${kebab(key)}`, `set ${key} to false`).hideHelp());
    } else if (inner.type === 'enum') {
      // Choices are listed but checked by the schema, so a bad value is reported like any knob.
      cmd.addOption(new Option(`${flag} <value>`, `${help}: ${(inner.options ?? []).join(' | ')}`));
    } else if (inner.type === 'array') {
      cmd.addOption(new Option(`${flag} <list>`, help).argParser((v) => v.split(',').map((x) => numberArg(flag)(x))));
    } else {
      cmd.addOption(new Option(`${flag} <n>`, help).argParser(numberArg(flag)));
    }
  }
}

/**
 * The settings of a submit: `base` (from `--settings`) overridden by the knob flags given, checked
 * by the schema. Only keys the user set are returned (the API applies the pack's defaults).
 */
export function settingsFromOptions(opts: Record<string, unknown>, base: Record<string, unknown> = {}): Record<string, unknown> {
  const settings: Record<string, unknown> = { ...base };
  for (const key of KNOB_KEYS) if (opts[key] !== undefined) settings[key] = opts[key];
  const parsed = settingsSchema.safeParse(settings);
  if (!parsed.success) {
    const e = zodToPipelineError(parsed.error, 'settings');
    const prefix = e.field ? `${e.field}: ` : '';
    let message = e.message;
    // PipelineError prefixes the field, and the zod issue text carries it too.
    while (prefix && message.startsWith(prefix)) message = message.slice(prefix.length);
    throw new InputError(e.code, message, e.field);
  }
  return settings;
}

/** `--settings` value: inline JSON, or `@file.json`. */
export function parseSettingsJson(text: string, readFile: (path: string) => string): Record<string, unknown> {
  let raw = text;
  if (text.startsWith('@')) {
    try {
      raw = readFile(text.slice(1));
    } catch (e) {
      throw new InputError('MISSING_INPUT', `cannot read ${text.slice(1)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'settings');
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    throw new InputError('INVALID_KNOB', `not valid JSON (${(e as Error).message})`, 'settings');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InputError('INVALID_KNOB', 'must be a JSON object', 'settings');
  return value as Record<string, unknown>;
}
