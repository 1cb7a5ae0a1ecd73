/**
 * Batches end to end on a pack whose UNet output depends on x (a small bench pack: random weights),
 * so the noise shows in the image: item k of a batch is item k rendered alone, for an SDE sampler
 * (per-step noise) as for the default one, and `diffuser_pndm` decodes the VP sample.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { colorize } from '../src/colorize.ts';
import { loadBenchPack, settingsFor } from './fixtures.ts';

const SIZE = 64;
const reference = () => halfImage(SIZE, SIZE, COLOURS.red, COLOURS.grey);

describe('colorize batches (bench pack)', () => {
  for (const sampler of ['dpmpp_2m_sde', 'euler_ancestral', 'diffuser_dpm'] as const) {
    it(`${sampler}: item 2 of a batch of 3 is item 2 rendered alone, byte for byte`, async () => {
      const pack = await loadBenchPack();
      const base = { sampler, steps: 6, guidanceScale: 1, seed: 11, width: SIZE, height: SIZE };
      const { image: sketch } = sketchFrame(SIZE, SIZE);
      const batch = await colorize(pack, settingsFor(pack, { ...base, batchSize: 3 }), { sketch, reference: reference() });
      const alone = await colorize(pack, settingsFor(pack, base), { sketch, reference: reference() }, { firstItem: 2 });
      const first = await colorize(pack, settingsFor(pack, base), { sketch, reference: reference() });
      assert.equal(batch.images.length, 3);
      assert.equal(alone.images.length, 1);
      assert.deepEqual(batch.images[2]!.data, alone.images[0]!.data, 'item 2');
      assert.deepEqual(batch.images[0]!.data, first.images[0]!.data, 'item 0 = the default single render');
      assert.notDeepEqual(batch.images[1]!.data, batch.images[2]!.data, 'items differ');
    });
  }

  it('diffuser_pndm renders: n + 9 UNet calls, one progress event per step', async () => {
    const pack = await loadBenchPack();
    const s = settingsFor(pack, { sampler: 'diffuser_pndm', steps: 5, guidanceScale: 1, seed: 5, width: SIZE, height: SIZE });
    const { image: sketch } = sketchFrame(SIZE, SIZE);
    const steps: number[] = [];
    const r = await colorize(pack, s, { sketch, reference: reference() }, { onProgress: (p) => p.stage === 'sample' && steps.push(p.step) });
    assert.deepEqual(steps, [1, 2, 3, 4, 5]);
    for (const v of r.images[0]!.data) assert.ok(Number.isFinite(v) && v >= -1 && v <= 1);
  });
});
