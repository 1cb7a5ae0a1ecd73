/**
 * Every knob of the settings schema as a command-line flag (commander), shared by
 * `celfarm-pipeline` and `celfarm`: `steps` → `--steps <n>`, `fgEnhance` → `--fg-enhance` /
 * `--no-fg-enhance`, `refScales` → `--ref-scales <list>`, enums with their choices in the help.
 * Values are checked by the settings schema itself (not by commander), so a bad value is refused
 * naming its field (`settings.mode`) like any other knob. Loads no onnxruntime.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { settingsSchema } from './settings.ts';

/** The parts of a zod 4 schema this module reads (structural, so the CLI needs no zod import). */
interface SchemaNode {
  type: string;
  def: { innerType?: SchemaNode; defaultValue?: unknown; element?: SchemaNode };
  options?: readonly string[];
}

export const KNOB_HELP: Record<string, string> = {
  mode: 'Style / BG enhance',
  fgEnhance: 'FG enhance: split attention only',
  width: 'output width in px, with --height (fitted to the pack multiple; default: the sketch size, fitted)',
  height: 'output height in px',
  steps: 'sampler steps 1–100',
  sampler: 'sampler',
  scheduler: 'sigma schedule',
  seed: 'seed, −1 = random (resolved and reported)',
  batchSize: 'images per request 1–8',
  guidanceScale: 'reference guidance scale 1–15',
  sketchGuidanceScale: 'sketch guidance scale 1–5',
  guidanceStart: 'reference guidance window start 0–1',
  guidanceEnd: 'reference guidance window end 0–1',
  referenceStrength: 'reference strength 0–1',
  encScale: 'encoder cross-attention scale 0–1',
  middleScale: 'colour (middle) cross-attention scale 0–1',
  lowScale: 'semantics (low) cross-attention scale 0–1',
  refScales: '16 comma-separated per-layer reference scales, layer i from entry i (accurate mode; overrides the four above)',
  accurate: 'accurate crossattn control: --ref-scales (default 16 × 1) sets every layer (default: on when --ref-scales is given)',
  disentangleScale: 'disentangle scale 0–1: accepted as in the app, which uses it nowhere (no effect)',
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
  injection: 'attention injection (needs a pack with unet_inject; about 2× the sampling time)',
  injectionFidelitySketch: "injection fidelity (sketch) 0–2: the reference's line hints in the injection pass",
  injectionFidelityReference: 'injection fidelity (reference) 0–1',
  injectionStartStep: 'injection start step 0–1 (relative)',
};

export const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** A commander parser that refuses what is not a finite number, naming the flag. */
export function numberArg(flag: string) {
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

