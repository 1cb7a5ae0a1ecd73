/**
 * The off-thread host: the caller's timers keep firing while a long inference runs, progress
 * arrives per sampler step, cancellation stops at a step boundary, and errors keep their code.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { COLOURS, halfImage, sketchFrame } from '@celfarm/model-kit/samples';
import { PipelineError } from '../src/errors.ts';
import { PipelineHost } from '../src/host/host.ts';
import type { Progress } from '../src/colorize.ts';
import { readPackManifest } from '../src/pack/manifest.ts';
import type { PackManifest } from '../src/pack/schema.ts';
import { resolveSettings, type SettingsInput } from '../src/settings.ts';
import { analyticPackDir } from './fixtures.ts';

const inputs = (size: number) => ({
  sketch: sketchFrame(size, size).image,
  reference: halfImage(size, size, COLOURS.red, COLOURS.grey),
});

describe('PipelineHost', () => {
  let host: PipelineHost;
  let manifest: PackManifest;
  /** The host takes settings resolved before they are sent, as the API resolves them at submit. */
  const resolved = (s: SettingsInput) => resolveSettings(s, manifest).settings;
  before(async () => {
    manifest = (await readPackManifest({ dir: await analyticPackDir() })).manifest;
    host = new PipelineHost({ packDir: await analyticPackDir(), intraOpThreads: 1 });
    const info = await host.ready;
    assert.equal(info.pack, 'analytic@1.0.0');
    assert.equal(info.provider, 'cpu');
  });
  after(() => host.close());

  it('keeps the caller’s timers firing during a long inference', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const t0 = performance.now();
    const progress: Progress[] = [];
    // Batch 8 at 512² for 60 steps: long enough that a blocked loop would miss most ticks.
    const r = await host.colorize(inputs(512), resolved({ mode: 'full', steps: 60, batchSize: 8, width: 512, height: 512, seed: 1 }), {
      onProgress: (p) => progress.push(p),
    });
    clearInterval(timer);
    const ms = performance.now() - t0;
    assert.equal(r.images.length, 8);
    assert.ok(ms > 300, `the job should take a while (took ${ms.toFixed(0)} ms)`);
    // setInterval(5) can fire at most ms/5 times; a blocked loop fires 0–1. A tenth of that bound
    // tells them apart on a machine whose other cores are busy too.
    assert.ok(ticks >= Math.max(10, ms / 5 / 10), `${ticks} ticks in ${ms.toFixed(0)} ms: the main loop was blocked`);
    const steps = progress.filter((p) => p.stage === 'sample').map((p) => p.step);
    assert.deepEqual(steps, Array.from({ length: 60 }, (_, i) => i + 1));
    assert.deepEqual([...new Set(progress.map((p) => p.stage))], ['prepare', 'preprocess', 'mask', 'encode', 'sample', 'decode', 'postprocess']);
  });

  it('cancels at a step boundary and keeps serving', async () => {
    const ac = new AbortController();
    const seen: number[] = [];
    await assert.rejects(
      // Steps long enough (batch 4 at 512²) that the abort after step 3 lands long before step 100.
      host.colorize(inputs(512), resolved({ steps: 100, batchSize: 4, width: 512, height: 512, seed: 1 }), {
        signal: ac.signal,
        onProgress: (p) => {
          if (p.stage !== 'sample') return;
          seen.push(p.step);
          if (p.step === 3) ac.abort();
        },
      }),
      (e: unknown) => e instanceof PipelineError && e.code === 'CANCELLED',
    );
    assert.ok(Math.max(...seen) < 100, `stopped early (last step ${Math.max(...seen)})`);
    const r = await host.colorize(inputs(128), resolved({ steps: 4, seed: 2 }));
    assert.equal(r.images[0]!.width, 128);
  });

  it('reports errors across the thread with their code and field, and reuses a prepared context', async () => {
    const settings = resolved({ mode: 'background', steps: 4, seed: 3 });
    await assert.rejects(
      host.frame(new Uint8Array(16), sketchFrame(128, 128).image, settings),
      (e: unknown) => e instanceof PipelineError && e.code === 'CONTEXT_INVALID' && e.field === 'context',
    );
    const { reference } = inputs(128);
    const prepared = await host.prepare({ reference }, settings);
    assert.match(prepared.key, /^[0-9a-f]{64}$/);
    assert.ok(prepared.referenceMask, 'background mode stores the reference mask');
    const a = await host.frame(prepared.context.slice(), sketchFrame(128, 128).image, settings);
    const b = await host.frame(prepared.context.slice(), sketchFrame(128, 128).image, settings);
    assert.deepEqual(a.images[0]!.data, b.images[0]!.data);
  });

  it('fails to start with a clear error when the pack is missing', async () => {
    const bad = new PipelineHost({ packDir: '/nonexistent/pack' });
    await assert.rejects(bad.ready, (e: unknown) => e instanceof PipelineError && e.code === 'PACK_FILE_MISSING');
    await bad.close();
  });

  it('rejects at once, never hangs, after the inference thread has died', async () => {
    const doomed = new PipelineHost({ packDir: await analyticPackDir(), intraOpThreads: 1 });
    await doomed.ready;
    // Kill the thread from outside, as a crash would.
    await (doomed as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    const reason = await doomed.exited;
    assert.match(reason.message, /inference thread exited/);
    await assert.rejects(doomed.colorize(inputs(64), resolved({ steps: 2 })), /inference thread exited/);
  });
});
