/** celfarm-pipeline colorize: writes the PNG a TD asked for; bad input exits non-zero naming the field. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng } from '../src/image/index.ts';
import { analyticPackDir, ROOT } from './fixtures.ts';

const BIN = join(ROOT, 'libs/pipeline/bin/celfarm-pipeline.mjs');

describe('celfarm-pipeline CLI', () => {
  let dir: string;
  let pack: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'celfarm-cli-'));
    pack = await analyticPackDir();
    await writeFile(join(dir, 'sketch.png'), await encodePng(sketchFrame(200, 100).image));
    await writeFile(join(dir, 'ref.png'), await encodePng(halfImage(96, 96, COLOURS.red, COLOURS.grey)));
    await writeFile(join(dir, 'broken.png'), Buffer.from('\x89PNG\r\n\x1a\nthis is not a png'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const run = (...args: string[]) =>
    spawnSync(process.execPath, [BIN, 'colorize', '--pack', pack, ...args], { cwd: dir, encoding: 'utf8' });

  it('colorizes to the requested size, with a fitted-size warning and crop', async () => {
    const r = run('--sketch', 'sketch.png', '--reference', 'ref.png', '--out', 'out.png', '--mode', 'full', '--steps', '5',
      '--seed', '7', '--width', '130', '--height', '128', '--crop', '--quiet');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /warning \(settings\.width\): width 130 is not a multiple of 64; rendering 128/);
    assert.match(r.stdout, /out\.png \(128×64, seed 7\)/);
    const meta = await sharp(join(dir, 'out.png')).metadata();
    assert.deepEqual([meta.width, meta.height], [128, 64]);
  });

  it('writes one file per batch item', () => {
    const r = run('--sketch', 'sketch.png', '--reference', 'ref.png', '--out', 'batch.png', '--steps', '3', '--batch-size', '2', '--quiet');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /batch-1\.png.*\n.*batch-2\.png/);
  });

  it('names the field of bad input and exits non-zero', () => {
    const knob = run('--sketch', 'sketch.png', '--reference', 'ref.png', '--out', 'x.png', '--steps', '0');
    assert.equal(knob.status, 2);
    assert.match(knob.stderr, /INVALID_KNOB.*settings\.steps/);
    const corrupt = run('--sketch', 'broken.png', '--reference', 'ref.png', '--out', 'x.png');
    assert.equal(corrupt.status, 2);
    assert.match(corrupt.stderr, /INVALID_IMAGE.*\(sketch\)/);
    const missing = run('--sketch', 'nope.png', '--reference', 'ref.png', '--out', 'x.png');
    assert.match(missing.stderr, /MISSING_INPUT.*\(sketch\).*nope\.png/);
    const mode = run('--sketch', 'sketch.png', '--reference', 'ref.png', '--out', 'x.png', '--mode', 'sepia');
    assert.equal(mode.status, 2);
    assert.match(mode.stderr, /UNKNOWN_MODE.*settings\.mode/);
  });
});
