/**
 * Where the worker's model pack comes from: a local folder (PACK_DIR), or an object-store prefix
 * (PACK_S3_PREFIX) downloaded into PACK_CACHE_DIR/<id>@<version> with every graph file's sha256
 * checked against pack.json. A cached copy is reused when its pack.json matches the store's and
 * every file still hashes right; anything else is downloaded again, aside, then renamed in.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packSchema, PipelineError, type PackManifest } from '@celfarm/pipeline';
import type { ObjectStore } from '@celfarm/storage';
import { sha256Hex } from './images.ts';

export interface ResolvedPack {
  dir: string;
  manifest: PackManifest;
  /** dir: used in place; cache: a verified earlier download; download: fetched and verified now. */
  source: 'dir' | 'cache' | 'download';
}

/** Parses pack.json bytes; PACK_INVALID lists every problem. */
export function parseManifest(bytes: Uint8Array | string): PackManifest {
  let json: unknown;
  try {
    json = JSON.parse(typeof bytes === 'string' ? bytes : new TextDecoder().decode(bytes));
  } catch (e) {
    throw new PipelineError('PACK_INVALID', `pack.json is not JSON (${(e as Error).message})`, 'pack.json');
  }
  const r = packSchema.safeParse(json);
  if (!r.success) {
    throw new PipelineError('PACK_INVALID', r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '), 'pack.json');
  }
  return r.data;
}

/** The manifest of a local pack folder. */
export async function readManifest(dir: string): Promise<PackManifest> {
  let raw: string;
  try {
    raw = await readFile(join(dir, 'pack.json'), 'utf8');
  } catch {
    throw new PipelineError('PACK_FILE_MISSING', `no pack.json in ${dir}`, 'pack.json');
  }
  return parseManifest(raw);
}

/** `s3://bucket/prefix` names its own bucket; a bare prefix lives in `defaultBucket`. */
export function parsePackLocation(location: string, defaultBucket: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(location);
  const [bucket, prefix] = m ? [m[1]!, m[2]!] : [defaultBucket, location];
  return { bucket, prefix: prefix.replace(/^\/+|\/+$/g, '') };
}

async function sha256File(path: string): Promise<string | null> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch {
    return null;
  }
  return hash.digest('hex');
}

async function isVerifiedCopy(dir: string, manifestBytes: Uint8Array, manifest: PackManifest): Promise<boolean> {
  const local = await readFile(join(dir, 'pack.json')).catch(() => null);
  if (!local || !Buffer.from(manifestBytes).equals(local)) return false;
  for (const entry of Object.values(manifest.graphs)) {
    if ((await sha256File(join(dir, entry.file))) !== entry.sha256) return false;
  }
  return true;
}

/** Downloads (or reuses) the pack under `prefix` of `objects` into `cacheDir`. */
export async function fetchPack(objects: ObjectStore, prefix: string, cacheDir: string): Promise<ResolvedPack> {
  const keyOf = (name: string) => (prefix ? `${prefix}/${name}` : name);
  const manifestBytes = await objects.get(keyOf('pack.json'));
  if (!manifestBytes) throw new PipelineError('PACK_FILE_MISSING', `no pack.json under ${keyOf('')}`, 'pack.json');
  const manifest = parseManifest(manifestBytes);
  const dir = join(cacheDir, `${manifest.id}@${manifest.version}`);
  if (await isVerifiedCopy(dir, manifestBytes, manifest)) return { dir, manifest, source: 'cache' };

  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(tmp, { recursive: true });
  try {
    for (const [graph, entry] of Object.entries(manifest.graphs)) {
      const bytes = await objects.get(keyOf(entry.file));
      if (!bytes) throw new PipelineError('PACK_FILE_MISSING', `${keyOf(entry.file)} is missing`, `graphs.${graph}`);
      const sha = sha256Hex(bytes);
      if (sha !== entry.sha256) {
        throw new PipelineError('PACK_HASH_MISMATCH', `${keyOf(entry.file)} has sha256 ${sha}, pack.json says ${entry.sha256}`, `graphs.${graph}`);
      }
      await writeFile(join(tmp, entry.file), bytes);
    }
    // pack.json last: a folder with a pack.json is complete.
    await writeFile(join(tmp, 'pack.json'), manifestBytes);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    // Another worker on this host may have renamed its verified copy in first.
    if (await isVerifiedCopy(dir, manifestBytes, manifest)) return { dir, manifest, source: 'cache' };
    throw e;
  }
  return { dir, manifest, source: 'download' };
}
