/**
 * Local inputs of a submit: the frames of a folder (images sorted by name), the multipart form
 * the API takes, and the default idempotency key, a hash of everything that defines the shot so a
 * retried command returns the first shot instead of creating a second one.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { formRequestSchema, type FormRequest } from '@celfarm/contract';
import { sha256Hex } from '@celfarm/pipeline/hash';
import { InputError } from './api.ts';

export const FRAME_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp'];

const byName = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true }) || (a < b ? -1 : a > b ? 1 : 0);

/**
 * The frame files of `folder`: .png/.jpg/.jpeg/.webp, sorted by name (digits compare as numbers,
 * so `f2` comes before `f10`); files given in `exclude` (the reference, the background) are skipped.
 */
export async function frameFiles(folder: string, exclude: string[] = []): Promise<string[]> {
  let names: string[];
  try {
    const s = await stat(folder);
    if (!s.isDirectory()) throw new InputError('MISSING_INPUT', `${folder} is not a folder`, 'frames');
    names = await readdir(folder);
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError('MISSING_INPUT', `cannot read ${folder} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'frames');
  }
  const skip = new Set(exclude.map((p) => resolve(p)));
  const files: string[] = [];
  for (const name of names.sort(byName)) {
    if (name.startsWith('.') || !FRAME_EXTENSIONS.includes(extname(name).toLowerCase())) continue;
    const full = join(folder, name);
    if (skip.has(resolve(full))) continue;
    if (!(await stat(full)).isFile()) continue;
    files.push(full);
  }
  if (files.length === 0) throw new InputError('MISSING_INPUT', `no ${FRAME_EXTENSIONS.join('/')} files in ${folder}`, 'frames');
  return files;
}

export async function readInput(path: string, field: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw new InputError('MISSING_INPUT', `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, field);
  }
}

const MIME: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp' };
const mimeOf = (path: string) => MIME[extname(path).toLowerCase()] ?? 'application/octet-stream';

export interface ShotInputs {
  /** Omitted: the API uses the project of the caller's key. */
  project?: string;
  settings: Record<string, unknown>;
  priority?: number;
  failedFrameShare?: number;
  /** What the studio calls the shot; omitted, the API derives one (see `formRequestSchema`). */
  name?: string;
  /** The studio's show, sequence and shot codes. */
  externalIds?: FormRequest['externalIds'];
  /** Shot QA thresholds for this shot, over the project's (`{thresholds: {palette: 8}}`). */
  qa?: FormRequest['qa'];
  /** Consistency options (shared noise, palette lock, reference chaining). */
  consistency?: FormRequest['consistency'];
  reference: { path: string; bytes: Uint8Array };
  background?: { path: string; bytes: Uint8Array };
  frames: { path: string; bytes: Uint8Array }[];
}

/** The `request` field of a multipart submit, as sent: only what was given (the API fills in its defaults). */
export type RequestField = Pick<FormRequest, 'settings'> & Partial<Omit<FormRequest, 'settings'>>;

/** The `request` JSON field of a multipart submit. */
export function requestField(inputs: ShotInputs): RequestField {
  return {
    ...(inputs.project !== undefined ? { project: inputs.project } : {}),
    settings: inputs.settings,
    ...(inputs.priority !== undefined ? { priority: inputs.priority } : {}),
    ...(inputs.failedFrameShare !== undefined ? { failedFrameShare: inputs.failedFrameShare } : {}),
    ...(inputs.name !== undefined ? { name: inputs.name } : {}),
    ...(inputs.externalIds !== undefined ? { externalIds: inputs.externalIds } : {}),
    ...(inputs.qa !== undefined ? { qa: inputs.qa } : {}),
    ...(inputs.consistency !== undefined ? { consistency: inputs.consistency } : {}),
  };
}

/**
 * Checks a request field with the contract's own schema before anything is uploaded, so a bad
 * value is refused as the API would refuse it, but naming the flag it came from: `flags` maps
 * request paths (`name`, `externalIds.show`) to flags (`--name`, `--show`). Settings are checked
 * separately, knob by knob (knobs.ts).
 */
export function checkRequest(request: RequestField, flags: Record<string, string>): void {
  const parsed = formRequestSchema.safeParse(request);
  if (parsed.success) return;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.map(String).join('.');
  let value: unknown = request;
  for (const k of issue.path) value = (value as Record<PropertyKey, unknown> | undefined)?.[k];
  const flag = flags[path];
  const message = `${value === undefined ? '' : `${JSON.stringify(value)}: `}${issue.message}`;
  throw new InputError('INVALID_REQUEST', flag ? `${message} (request.${path})` : message, flag ?? `request.${path}`);
}

/** multipart/form-data for POST /v1/shots: `request`, `reference`, optional `background`, `frames` in order. */
export function shotForm(inputs: ShotInputs): FormData {
  const form = new FormData();
  form.append('request', JSON.stringify(requestField(inputs)));
  const file = (f: { path: string; bytes: Uint8Array }) => new Blob([f.bytes], { type: mimeOf(f.path) });
  form.append('reference', file(inputs.reference), basename(inputs.reference.path));
  if (inputs.background) form.append('background', file(inputs.background), basename(inputs.background.path));
  for (const f of inputs.frames) form.append('frames', file(f), basename(f.path));
  return form;
}

/** JSON with object keys sorted at every level, so equal settings hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The default Idempotency-Key: `cli-` + a sha256 over the request field (project, settings,
 * priority, failedFrameShare, name, studio ids, QA thresholds), the content hashes of the reference and
 * background, and each frame's file name and content hash, in order. Frame names count because
 * the outputs are named after them; the reference's and background's names do not.
 */
export function defaultIdempotencyKey(inputs: ShotInputs): string {
  const doc = {
    // 2: the name, the studio ids and the frames' file names joined the hash.
    v: 2,
    request: requestField(inputs),
    reference: sha256Hex(inputs.reference.bytes),
    background: inputs.background ? sha256Hex(inputs.background.bytes) : null,
    frames: inputs.frames.map((f) => [basename(f.path), sha256Hex(f.bytes)]),
  };
  return `cli-${sha256Hex(canonicalJson(doc)).slice(0, 48)}`;
}
