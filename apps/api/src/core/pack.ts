/**
 * The model pack manifest the API validates settings against: `PACK_DIR/pack.json`, or
 * `pack.json` under `PACK_S3_PREFIX` (`s3://bucket/prefix`, or a key prefix in S3_BUCKET).
 * Only the manifest is read; the API never opens a graph.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '@celfarm/config';
import { packSchema, type PackManifest } from '@celfarm/pipeline/pack/schema';
import { S3ObjectStore, s3OptionsFrom, type ObjectStore } from '@celfarm/storage';

export class PackManifestError extends Error {
  override readonly name = 'PackManifestError';
}

/** Where `pack.json` lives in S3 for a PACK_S3_PREFIX value. */
export function packManifestLocation(prefix: string, defaultBucket: string): { bucket: string; key: string } {
  let bucket = defaultBucket;
  let rest = prefix;
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(prefix);
  if (m) {
    bucket = m[1]!;
    rest = m[2]!;
  }
  rest = rest.replace(/^\/+|\/+$/g, '');
  return { bucket, key: rest ? `${rest}/pack.json` : 'pack.json' };
}

export async function loadPackManifest(config: Config, objects: ObjectStore): Promise<PackManifest> {
  let raw: string;
  let where: string;
  if (config.PACK_DIR) {
    where = join(config.PACK_DIR, 'pack.json');
    try {
      raw = await readFile(where, 'utf8');
    } catch (e) {
      throw new PackManifestError(`cannot read ${where}: ${(e as Error).message}`);
    }
  } else if (config.PACK_S3_PREFIX) {
    const { bucket, key } = packManifestLocation(config.PACK_S3_PREFIX, config.S3_BUCKET);
    where = `s3://${bucket}/${key}`;
    const other =
      bucket === config.S3_BUCKET
        ? null
        : new S3ObjectStore(s3OptionsFrom(config, bucket));
    try {
      const bytes = await (other ?? objects).get(key);
      if (!bytes) throw new PackManifestError(`${where} does not exist`);
      raw = Buffer.from(bytes).toString('utf8');
    } finally {
      other?.destroy();
    }
  } else {
    throw new PackManifestError('no model pack configured: set PACK_DIR (a folder with pack.json) or PACK_S3_PREFIX');
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new PackManifestError(`${where} is not JSON: ${(e as Error).message}`);
  }
  const parsed = packSchema.safeParse(json);
  if (!parsed.success) {
    throw new PackManifestError(`${where} is not a valid pack manifest:\n${parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n')}`);
  }
  return parsed.data;
}
