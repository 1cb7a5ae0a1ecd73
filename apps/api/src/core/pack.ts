/**
 * The model pack manifest the API validates settings against: `PACK_DIR/pack.json`, or
 * `pack.json` under `PACK_S3_PREFIX` (`s3://bucket/prefix`, or a key prefix in S3_BUCKET).
 * Only the manifest is read, by the reader the worker uses too; the API never opens a graph.
 */
import type { Config } from '@celfarm/config';
import { readPackManifest } from '@celfarm/pipeline/pack/manifest';
import type { PackManifest } from '@celfarm/pipeline/pack/schema';
import { parseS3Location, withBucket, type S3ObjectStore } from '@celfarm/storage';

/** The served pack's manifest; a PipelineError (PACK_FILE_MISSING, PACK_INVALID) names the file and fields. */
export async function loadPackManifest(config: Config, objects: S3ObjectStore): Promise<PackManifest> {
  if (config.PACK_DIR) return (await readPackManifest({ dir: config.PACK_DIR })).manifest;
  if (!config.PACK_S3_PREFIX) {
    throw new Error('no model pack configured: set PACK_DIR (a folder with pack.json) or PACK_S3_PREFIX (an object-store prefix with pack.json)');
  }
  const { bucket, prefix } = parseS3Location(config.PACK_S3_PREFIX, config.S3_BUCKET);
  const read = await withBucket(config, objects, bucket, (store) => readPackManifest({ objects: store, prefix, where: `s3://${bucket}` }));
  return read.manifest;
}
