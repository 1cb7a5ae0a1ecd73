/**
 * The app's "Reference mask extractor" per request: `referenceMaskExtractor` picks the network of
 * the reference/background mask (and background removal) — the pack's `ref_mask`, or the other
 * network's `ref_mask_<network>` — resolved and recorded; refused naming the field on a pack
 * without that graph.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COLOURS, referenceImage, sketchFrame } from '@celfarm/model-kit/samples';
import { colorize } from '../src/colorize.ts';
import { PipelineError } from '../src/errors.ts';
import type { GraphName } from '../src/pack/contract.ts';
import type { ModelPack } from '../src/pack/loader.ts';
import { resolveSettings } from '../src/settings.ts';
import { loadPack, settingsFor } from './fixtures.ts';

const SIZE = 64;

/** The graphs a render runs, in order. */
async function graphsRun(pack: ModelPack, run: () => Promise<unknown>): Promise<GraphName[]> {
  const seen: GraphName[] = [];
  const original = pack.session.bind(pack);
  pack.session = async (graph: GraphName) => {
    const session = await original(graph);
    return Object.assign(Object.create(session) as typeof session, {
      run: (feeds: Parameters<typeof session.run>[0]) => (seen.push(graph), session.run(feeds)),
    });
  };
  try {
    await run();
  } finally {
    pack.session = original;
  }
  return seen;
}

describe('reference mask extractor per request (analytic pack: ref_mask is rmbg, ref_mask_isnet the other)', () => {
  const base = { mode: 'background', steps: 2, seed: 3, width: SIZE, height: SIZE } as const;
  const inputs = () => ({ sketch: sketchFrame(SIZE, SIZE).image, reference: referenceImage(80, 64, COLOURS.red, COLOURS.grey) });

  it("resolves to the pack's network when not given, and takes the app's labels", async () => {
    const pack = await loadPack();
    assert.equal(settingsFor(pack, base).referenceMaskExtractor, 'rmbg');
    assert.equal(settingsFor(pack, { ...base, referenceMaskExtractor: 'ISNet' }).referenceMaskExtractor, 'isnet');
    assert.equal(settingsFor(pack, { ...base, referenceMaskExtractor: 'rmbg-v2' }).referenceMaskExtractor, 'rmbg');
    assert.throws(
      () => settingsFor(pack, { ...base, referenceMaskExtractor: 'u2net' }),
      (e: unknown) => e instanceof PipelineError && e.field === 'settings.referenceMaskExtractor' && /isnet/.test(e.message),
    );
  });

  it('runs the chosen network for the reference mask and for background removal; both find the red character', async () => {
    const pack = await loadPack();
    const rmbg = await colorize(pack, settingsFor(pack, base), inputs());
    const chosen = { ...base, referenceMaskExtractor: 'isnet', removeBackground: true } as const;
    let isnet!: Awaited<ReturnType<typeof colorize>>;
    const graphs = await graphsRun(pack, async () => (isnet = await colorize(pack, settingsFor(pack, chosen), inputs())));
    assert.deepEqual(graphs.filter((g) => g.startsWith('ref_mask')), ['ref_mask_isnet', 'ref_mask_isnet'], 'the reference mask, then background removal');
    const a = rmbg.context.referenceMask!;
    const b = isnet.context.referenceMask!;
    assert.deepEqual(a.dims, b.dims);
    // The same character either way (the two paths resample differently at its edge).
    let agree = 0;
    for (let i = 0; i < a.data.length; i++) if (a.data[i]! > 0.5 === b.data[i]! > 0.5) agree++;
    assert.ok(agree / a.data.length > 0.97, `masks agree on ${((100 * agree) / a.data.length).toFixed(1)}% of pixels`);
    assert.notEqual(isnet.context.key, rmbg.context.key, 'the network is part of the context key');
  });

  it('refuses a network the pack lacks, naming the field; warns when no mask is computed', async () => {
    const pack = await loadPack({ omit: ['ref_mask_isnet'] });
    assert.throws(
      () => settingsFor(pack, { ...base, referenceMaskExtractor: 'isnet' }),
      (e: unknown) => e instanceof PipelineError && e.code === 'GRAPH_MISSING' && e.field === 'settings.referenceMaskExtractor' && /ref_mask_isnet/.test(e.message),
    );
    assert.equal(settingsFor(pack, base).referenceMaskExtractor, 'rmbg', 'its own network still serves');
    const { warnings } = resolveSettings({ mode: 'vanilla', referenceMaskExtractor: 'isnet' }, pack.manifest);
    assert.deepEqual(warnings.map((w) => [w.code, w.field]), [['IGNORED', 'settings.referenceMaskExtractor']]);
  });
});
