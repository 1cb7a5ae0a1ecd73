/**
 * The pack the API serves, read where the operator put it: PACK_DIR, or PACK_S3_PREFIX in the
 * farm's bucket or another one; a wrong location is refused at boot with the place it looked in.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig, type Config } from '@celfarm/config';
import { buildAnalyticPack } from '@celfarm/model-kit/analytic';
import { PipelineError } from '@celfarm/pipeline/errors';
import { startS3, type RunningS3 } from '@celfarm/services';
import { S3ObjectStore, s3OptionsFrom } from '@celfarm/storage';
import { loadPackManifest } from '../src/core/pack.ts';

/** The analytic pack's pack.json under another id, to tell where a manifest was read from. */
const renamed = (packJson: string, id: string) => Buffer.from(JSON.stringify({ ...(JSON.parse(packJson) as object), id }));

describe('the API reads the pack manifest it serves', () => {
  let dir: string;
  let s3: RunningS3;
  let objects: S3ObjectStore;
  const configOf = (env: Record<string, string>): Config => loadConfig({ S3_ENDPOINT: s3.endpoint, S3_BUCKET: 'farm', ...env });
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-api-pack-'));
    s3 = await startS3(join(dir, 's3'), 'farm');
    await buildAnalyticPack(join(dir, 'pack'));
    const packJson = await readFile(join(dir, 'pack', 'pack.json'), 'utf8');
    objects = new S3ObjectStore(s3OptionsFrom(configOf({})));
    await objects.put('packs/in-farm/pack.json', renamed(packJson, 'in-farm'));
    const models = new S3ObjectStore(s3OptionsFrom(configOf({}), 'models'));
    await models.ensureBucket();
    await models.put('v2/pack.json', renamed(packJson, 'in-models'));
    models.destroy();
  });
  after(async () => {
    objects.destroy();
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('from PACK_DIR, a prefix of the farm bucket, or s3://another-bucket/prefix', async () => {
    assert.equal((await loadPackManifest(configOf({ PACK_DIR: join(dir, 'pack') }), objects)).id, 'analytic');
    assert.equal((await loadPackManifest(configOf({ PACK_S3_PREFIX: 'packs/in-farm' }), objects)).id, 'in-farm');
    assert.equal((await loadPackManifest(configOf({ PACK_S3_PREFIX: 's3://models/v2/' }), objects)).id, 'in-models');
  });

  it('refuses a location without pack.json, naming where it looked', async () => {
    await assert.rejects(loadPackManifest(configOf({ PACK_S3_PREFIX: 's3://models/v3' }), objects), (e: unknown) => {
      assert.ok(e instanceof PipelineError && e.code === 'PACK_FILE_MISSING', String(e));
      assert.match(e.message, /no s3:\/\/models\/v3\/pack\.json/);
      return true;
    });
    await assert.rejects(loadPackManifest(configOf({ PACK_S3_PREFIX: 'packs' }), objects), /no s3:\/\/farm\/packs\/pack\.json; the packs below it are s3:\/\/farm\/packs\/in-farm/);
    await assert.rejects(loadPackManifest(configOf({}), objects), /no model pack configured/);
  });
});
