/**
 * The one reader of a pack's `pack.json`, for every process that needs the manifest: the API
 * (settings are resolved against it), the worker (it downloads what it lists), and
 * {@link ModelPack.load}. A pack is a folder or an object-store prefix; errors name the file
 * that was read and, for a schema problem, every manifest field at fault.
 *
 * Imports only Node, the schema and the error type, so the API takes it as
 * `@celfarm/pipeline/pack/manifest` without loading ONNX Runtime. It knows no S3: an object store
 * is anything with `get` and `list` (@celfarm/storage's ObjectStore has both).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PipelineError } from '../errors.ts';
import { packSchema, type PackManifest } from './schema.ts';

/** The manifest's name inside a pack, and the `field` of every error about it. */
export const PACK_MANIFEST = 'pack.json';

/** The reads the manifest reader makes of an object store. */
export interface ObjectReader {
  /** The object's bytes, or null when it does not exist. */
  get(key: string): Promise<Uint8Array | null>;
  /** Every key under `prefix`, sorted (read only to explain a missing pack.json). */
  list(prefix: string): Promise<Array<{ key: string }>>;
}

/** Where a pack lives: a local folder, or a key prefix in an object store. */
export type PackManifestSource =
  | { dir: string }
  | {
      objects: ObjectReader;
      /** Key prefix of the pack (leading and trailing slashes ignored; empty: the bucket's root). */
      prefix: string;
      /** How errors name the store, e.g. `s3://models`; default: keys alone. */
      where?: string;
    };

export interface PackManifestRead {
  manifest: PackManifest;
  /** pack.json exactly as stored (the worker hashes and copies these bytes). */
  bytes: Uint8Array;
  /** Where it was read: a path, or `s3://bucket/prefix/pack.json`. */
  file: string;
}

/** Finds and parses the pack.json of a pack folder or object-store prefix. */
export async function readPackManifest(source: PackManifestSource): Promise<PackManifestRead> {
  const { file, bytes } = 'dir' in source ? await fromFolder(source.dir) : await fromObjects(source.objects, source.prefix, source.where);
  return { manifest: parsePackManifest(bytes, file), bytes, file };
}

/**
 * Parses pack.json's bytes (or text) with the pack schema. PACK_INVALID names `file` and lists
 * every problem as `<field>: <what is wrong>`.
 */
export function parsePackManifest(bytes: Uint8Array | string, file: string = PACK_MANIFEST): PackManifest {
  let json: unknown;
  try {
    json = JSON.parse(typeof bytes === 'string' ? bytes : new TextDecoder().decode(bytes));
  } catch (e) {
    throw new PipelineError('PACK_INVALID', `${file} is not JSON (${(e as Error).message})`, PACK_MANIFEST);
  }
  const parsed = packSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new PipelineError('PACK_INVALID', `${file} is not a valid pack manifest: ${problems}`, PACK_MANIFEST);
  }
  return parsed.data;
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

async function fromFolder(dir: string): Promise<{ file: string; bytes: Uint8Array }> {
  const file = join(dir, PACK_MANIFEST);
  try {
    return { file, bytes: await readFile(file) };
  } catch (e) {
    if (errno(e) !== 'ENOENT' && errno(e) !== 'ENOTDIR') {
      throw new PipelineError('PACK_FILE_MISSING', `cannot read ${file} (${(e as Error).message})`, PACK_MANIFEST);
    }
    throw new PipelineError('PACK_FILE_MISSING', `no ${PACK_MANIFEST} in ${dir}${await folderHint(dir)}`, PACK_MANIFEST);
  }
}

/** Why a folder has no pack.json, in words: it does not exist, or it holds packs in subfolders. */
async function folderHint(dir: string): Promise<string> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    return errno(e) === 'ENOENT' ? ' (the folder does not exist)' : errno(e) === 'ENOTDIR' ? ' (it is not a folder)' : '';
  }
  if (!entries.length) return ' (the folder is empty)';
  const packs: string[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const inside = await readdir(join(dir, entry.name)).catch(() => [] as string[]);
    if (inside.includes(PACK_MANIFEST)) packs.push(entry.name);
  }
  return nestedHint(packs.map((p) => join(dir, p)));
}

async function fromObjects(objects: ObjectReader, prefix: string, where?: string): Promise<{ file: string; bytes: Uint8Array }> {
  const base = prefix.replace(/^\/+|\/+$/g, '');
  const key = base ? `${base}/${PACK_MANIFEST}` : PACK_MANIFEST;
  const name = (k: string) => (where ? `${where}/${k}` : k);
  const bytes = await objects.get(key);
  if (!bytes) {
    const under = base ? `${base}/` : '';
    const listed = await objects.list(under);
    const packs = listed.filter((o) => o.key.endsWith(`/${PACK_MANIFEST}`)).map((o) => name(o.key.slice(0, -PACK_MANIFEST.length - 1)));
    const hint = packs.length ? nestedHint(packs) : listed.length ? ` (${listed.length} other objects there)` : ' (nothing is stored there)';
    throw new PipelineError('PACK_FILE_MISSING', `no ${name(key)}${hint}`, PACK_MANIFEST);
  }
  return { file: name(key), bytes };
}

function nestedHint(packs: string[]): string {
  if (!packs.length) return '';
  const shown = packs.slice(0, 5).join(', ') + (packs.length > 5 ? `, … (${packs.length} in all)` : '');
  return `; the packs below it are ${shown}: name one of them`;
}
