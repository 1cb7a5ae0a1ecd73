/**
 * Attention injection (docs/attention-injection.md) on the analytic pack: what the write and read
 * passes are fed, evaluation by evaluation, the reference side in the context, the start step,
 * per-item determinism, and refusals.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COLOURS, sketchFrame, uniformImage } from '@celfarm/model-kit/samples';
import { colorize } from '../src/colorize.ts';
import { PipelineError } from '../src/errors.ts';
import type { Tensor } from '../src/ort/runtime.ts';
import type { GraphName } from '../src/pack/contract.ts';
import type { ModelPack } from '../src/pack/loader.ts';
import { deserializeReferenceContext, serializeReferenceContext } from '../src/reference.ts';
import { BETA_END, BETA_START, gaussianNoise } from '../src/sampling/index.ts';
import { loadPack, settingsFor } from './fixtures.ts';

const SIZE = 64;
const S = 0.18215;

interface Call {
  graph: 'unet' | 'unet_inject';
  feeds: Record<string, Tensor>;
  out: Record<string, Tensor>;
}

/** Records every UNet call of a render (feeds and outputs), in order. */
function spy(pack: ModelPack): { calls: Call[]; restore: () => void } {
  const calls: Call[] = [];
  const original = pack.session.bind(pack);
  pack.session = async (graph: GraphName) => {
    const session = await original(graph);
    if (graph !== 'unet' && graph !== 'unet_inject') return session;
    return Object.assign(Object.create(session) as typeof session, {
      run: async (feeds: Record<string, Tensor>) => {
        const out = await session.run(feeds);
        calls.push({ graph, feeds, out });
        return out;
      },
    });
  };
  return { calls, restore: () => void (pack.session = original) };
}

/** √ā_k·z + √(1 − ā_k)·ε, written out independently of the pipeline (float64 ā, k = round half even). */
function expectedWriteSample(z: Float32Array, t: number, seed: number, e: number): Float32Array {
  let k = Math.round(t);
  if (Math.abs(t % 1) === 0.5 && k % 2 !== 0) k -= 1;
  let prod = 1;
  for (let i = 0; i <= k; i++) {
    const b = (Math.sqrt(BETA_START) + ((Math.sqrt(BETA_END) - Math.sqrt(BETA_START)) * i) / 999) ** 2;
    prod *= 1 - b;
  }
  const eps = gaussianNoise(seed, z.length, 2 ** 31 + e);
  return z.map((v, i) => Math.fround(Math.sqrt(prod)) * v + Math.fround(Math.sqrt(1 - prod)) * eps[i]!);
}

const close = (a: Float32Array, b: Float32Array, tol: number, what: string) => {
  assert.equal(a.length, b.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  assert.ok(worst <= tol, `${what}: differs by ${worst}`);
};

describe('attention injection (analytic pack)', () => {
  const reference = () => uniformImage(96, 80, COLOURS.red);
  const base = { steps: 5, seed: 21, width: SIZE, height: SIZE, sampler: 'dpmpp_2m_sde', scheduler: 'karras' } as const;

  it('feeds the write pass the noised reference and its hints, and the read pass the banks, from the start step on', async () => {
    const pack = await loadPack();
    const s = settingsFor(pack, {
      ...base,
      batchSize: 2,
      guidanceScale: 4,
      padScale: 1.5,
      injection: true,
      injectionFidelitySketch: 0.7,
      injectionFidelityReference: 0.3,
      injectionStartStep: 0.4,
    });
    const { image: sketch } = sketchFrame(SIZE, SIZE);
    const { calls, restore } = spy(pack);
    let r;
    try {
      r = await colorize(pack, s, { sketch, reference: reference() });
    } finally {
      restore();
    }

    // The reference side: the unpadded reference stretched to H×W (padding would bring white in).
    const inj = r.context.injection!;
    assert.deepEqual(inj.latent.dims, [1, 4, SIZE / 8, SIZE / 8]);
    const red = COLOURS.red;
    const cells = (SIZE / 8) ** 2;
    for (let c = 0; c < 4; c++) {
      for (let p = 0; p < cells; p++) assert.ok(Math.abs(inj.latent.data[c * cells + p]! - (c < 3 ? S * red[c]! : 0)) < 1e-6, `z_r channel ${c}`);
    }
    const grey = -(red[0]! + red[1]! + red[2]!) / 3; // the analytic hints: channel mean of −r
    for (const v of inj.control[0]!.data) assert.ok(Math.abs(v - grey) < 1e-6, 'hints of the negated reference');

    // Evaluation by evaluation: a plain call before the start step, a write then a read after it.
    const N = 4; // [C, U_ref] × 2 items
    let e = 0;
    let writes = 0;
    for (let i = 0; i < calls.length; e++) {
      const call = calls[i]!;
      const t = call.feeds.timestep!.data[0]!;
      if (1 - t / 999 < 0.4) {
        assert.equal(call.graph, 'unet', `evaluation ${e} (t ${t}) is plain`);
        i += 1;
        continue;
      }
      const [write, read] = [call, calls[i + 1]!];
      assert.equal(write.graph, 'unet_inject', `evaluation ${e}: write pass`);
      assert.equal(read.graph, 'unet_inject', `evaluation ${e}: read pass`);
      const xw = expectedWriteSample(inj.latent.data, t, s.seed, e);
      assert.deepEqual(write.feeds.x!.dims, [N, 4, SIZE / 8, SIZE / 8]);
      for (let n = 0; n < N; n++) close(write.feeds.x!.data.subarray(n * xw.length, (n + 1) * xw.length), xw, 1e-6, `evaluation ${e}: x_w of entry ${n}`);
      for (let k = 0; k < 5; k++) {
        const hint = inj.control[k]!.data.map((v) => v * 0.7);
        const fed = write.feeds[`control_${k}`]!;
        for (let n = 0; n < N; n++) close(fed.data.subarray(n * hint.length, (n + 1) * hint.length), hint, 1e-7, `evaluation ${e}: control_${k}`);
      }
      assert.deepEqual([...write.feeds.injection_blend!.data], [1, 1, 1, 1], 'the write pass is plain self-attention');
      for (let l = 0; l < 16; l++) {
        assert.deepEqual(write.feeds[`bank_in_${l}`]!.dims.slice(0, 2), [N, 1], 'one zero token');
        assert.ok(write.feeds[`bank_in_${l}`]!.data.every((v) => v === 0));
        assert.deepEqual(read.feeds[`bank_in_${l}`]!.data, write.out[`bank_${l}`]!.data, `evaluation ${e}: bank ${l} read back`);
      }
      assert.deepEqual([...read.feeds.injection_blend!.data].map((v) => Math.fround(v)), [0, 0, 0.3, 0.3].map(Math.fround), 'U_ref entries blend by fidelity');
      assert.deepEqual(write.feeds.context_fg, read.feeds.context_fg, 'the write pass sees the call\'s contexts');
      assert.deepEqual(write.feeds.timestep, read.feeds.timestep, 'and its timestep');
      assert.notDeepEqual(write.feeds.x!.data, read.feeds.x!.data);
      writes++;
      i += 2;
    }
    assert.ok(writes >= 2 && writes < e, `some evaluations inject (${writes} of ${e}), not all`);
  });

  it('changes the picture; the same seed gives the same picture; item k of a batch is item k alone', async () => {
    const pack = await loadPack();
    const { image: sketch } = sketchFrame(SIZE, SIZE);
    const off = await colorize(pack, settingsFor(pack, base), { sketch, reference: reference() });
    const on = { ...base, injection: true, injectionFidelityReference: 0 };
    const a = await colorize(pack, settingsFor(pack, on), { sketch, reference: reference() });
    const b = await colorize(pack, settingsFor(pack, on), { sketch, reference: reference() });
    assert.notDeepEqual(a.images[0]!.data, off.images[0]!.data, 'injection changes the output');
    assert.deepEqual(a.images[0]!.data, b.images[0]!.data, 'deterministic');
    const batch = await colorize(pack, settingsFor(pack, { ...on, batchSize: 2 }), { sketch, reference: reference() });
    const alone = await colorize(pack, settingsFor(pack, on), { sketch, reference: reference() }, { firstItem: 1 });
    assert.deepEqual(batch.images[1]!.data, alone.images[0]!.data, 'item 1');
  });

  it('before the start step, every evaluation is the plain one, as without injection', async () => {
    const pack = await loadPack();
    const { image: sketch } = sketchFrame(SIZE, SIZE);
    const record = async (settings: Parameters<typeof settingsFor>[1]) => {
      const { calls, restore } = spy(pack);
      try {
        await colorize(pack, settingsFor(pack, settings), { sketch, reference: reference() });
      } finally {
        restore();
      }
      return calls;
    };
    const off = await record(base);
    const late = await record({ ...base, injection: true, injectionStartStep: 0.9 });
    const first = late.findIndex((c) => c.graph === 'unet_inject');
    assert.ok(first >= 2, `the first evaluations are before tr 0.9 (first injected: call ${first})`);
    assert.ok(1 - late[first]!.feeds.timestep!.data[0]! / 999 >= 0.9);
    for (let i = 0; i < first; i++) {
      assert.equal(late[i]!.graph, 'unet');
      assert.ok(1 - late[i]!.feeds.timestep!.data[0]! / 999 < 0.9);
      assert.deepEqual(late[i]!.feeds.x, off[i]!.feeds.x, `evaluation ${i}: same input as without injection`);
      assert.deepEqual(late[i]!.out.model_output, off[i]!.out.model_output, `evaluation ${i}: same output`);
    }
    assert.equal(late.length, off.length + late.filter((c) => c.graph === 'unet_inject').length / 2, 'one extra call per injected evaluation');
  });

  it('keeps the injection reference in a serialised context', async () => {
    const pack = await loadPack();
    const { image: sketch } = sketchFrame(SIZE, SIZE);
    const s = settingsFor(pack, { ...base, steps: 2, injection: true });
    const { context } = await colorize(pack, s, { sketch, reference: reference() });
    const back = deserializeReferenceContext(serializeReferenceContext(context), pack.ref);
    assert.deepEqual(back.injection, context.injection);
    const plain = await colorize(pack, settingsFor(pack, { ...base, steps: 2 }), { sketch, reference: reference() });
    assert.equal(plain.context.injection, null);
    assert.notEqual(plain.context.key, context.key, 'injection is part of the context key');
  });

  it('refuses injection on a pack without unet_inject, naming the field; fidelity knobs without injection warn', async () => {
    const pack = await loadPack({ omit: ['unet_inject'] });
    assert.throws(
      () => settingsFor(pack, { ...base, injection: true }),
      (e: unknown) => e instanceof PipelineError && e.code === 'GRAPH_MISSING' && e.field === 'settings.injection' && /unet_inject/.test(e.message),
    );
    const full = await loadPack();
    const { resolveSettings } = await import('../src/settings.ts');
    const { warnings } = resolveSettings({ ...base, injectionStartStep: 0.5 }, full.manifest);
    assert.deepEqual(warnings.map((w) => [w.code, w.field]), [['IGNORED', 'settings.injectionStartStep']]);
    assert.throws(() => settingsFor(full, { ...base, injection: true, injectionFidelitySketch: 2.5 }), /injectionFidelitySketch|2/);
  });
});
