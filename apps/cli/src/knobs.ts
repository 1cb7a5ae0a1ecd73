/**
 * Pipeline knobs as CLI flags, built from the pipeline's own `settingsSchema` (imported from its
 * settings module only, which does not load onnxruntime): `steps` → `--steps <n>`, `fgEnhance` →
 * `--fg-enhance` / `--no-fg-enhance`, `refScales` → `--ref-scales <list>`, enums with their choices
 * in the help. Values are checked by the same schema before anything is sent, so a bad knob is
 * refused naming the field (`settings.steps`) exactly as the API would.
 */
import { KNOB_KEYS } from '@celfarm/pipeline/knob-flags';

export { addKnobOptions, KNOB_KEYS } from '@celfarm/pipeline/knob-flags';
import { settingsSchema, zodToPipelineError } from '@celfarm/pipeline/settings';
import { InputError } from './api.ts';

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
