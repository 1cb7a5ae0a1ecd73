/**
 * Settings are resolved once, at submit (apps/api), and every later stage takes them as given:
 * the worker hands the inference thread exactly what the shot record holds (the frame's own seed
 * aside), a frame submitted at 256² renders at 256², and no module past the API's intake calls
 * resolveSettings.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { frameSeed } from '@celfarm/jobs';
import { sketchFrame } from '@celfarm/model-kit/samples';
import { encodePng, type ResolvedSettings } from '@celfarm/pipeline';
import { until } from '@celfarm/services';
import { shotKeys } from '@celfarm/storage';
import { decodePng, sketchPngs, stageShot, startTestFarm, submitShot, waitForShot, type TestFarm } from './fixtures.ts';

const ROOT = resolve(import.meta.dirname, '../../..');

/** The only modules that may resolve settings: where it is defined, the API's intake, the farm-less pipeline CLI. */
const RESOLVERS = ['libs/pipeline/src/settings.ts', 'apps/api/src/shots/shot-intake.ts', 'libs/pipeline/src/cli.ts'];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'dist') return [];
    return statSync(path).isDirectory() ? sources(path) : /\.(ts|tsx|mjs)$/.test(name) ? [path] : [];
  });
}

describe('settings taken as given after submit', () => {
  it('calls resolveSettings nowhere but the API intake and the pipeline CLI', () => {
    const roots = ['apps', 'libs'].flatMap((top) => readdirSync(join(ROOT, top)).map((name) => join(ROOT, top, name, 'src')));
    const callers = roots
      .filter((dir) => statSync(dir, { throwIfNoEntry: false })?.isDirectory())
      .flatMap(sources)
      .filter((file) => /\bresolveSettings\s*\(/.test(readFileSync(file, 'utf8')))
      .map((file) => relative(ROOT, file))
      .sort();
    assert.deepEqual(callers, [...RESOLVERS].sort());
  });

  describe('the worker on redis-server + s3rver', () => {
    let f: TestFarm;
    before(async () => {
      f = await startTestFarm(`sg${process.pid}`);
    });
    after(() => f.stop());

    it('hands the inference thread the shot’s resolved settings, and renders 256² frames at 256²', async () => {
      const frames = await Promise.all([0, 1].map((i) => encodePng(sketchFrame(256, 256, i, 2).image)));
      // Resolved as the API does at submit: no size asked, so the frames' 256².
      const { shot } = await stageShot(f, { settings: { mode: 'vanilla', steps: 2, guidanceScale: 1 }, seed: 40, frames });
      assert.deepEqual([shot.settings.width, shot.settings.height, shot.settings.sizeFrom], [256, 256, 'frames']);

      const seen: { job: string; settings: ResolvedSettings }[] = [];
      const worker = f.freshWorker({
        host: {
          prepare: (inputs, settings, opts) => (seen.push({ job: 'prepare', settings }), f.host.prepare(inputs, settings, opts)),
          frame: (context, sketch, settings, opts) => (seen.push({ job: 'frame', settings }), f.host.frame(context, sketch, settings, opts)),
        },
      });
      const attempt = { jobId: 'direct', attempt: 1, attempts: 2, reportProgress: async () => undefined };
      for (const frame of [1, 2]) assert.equal(await worker.renderFrame({ shotId: shot.id, project: shot.project, frame }, attempt), 'completed');

      assert.deepEqual(
        seen,
        [
          { job: 'prepare', settings: shot.settings },
          { job: 'frame', settings: { ...shot.settings, seed: frameSeed(40, 1) } },
          { job: 'frame', settings: { ...shot.settings, seed: frameSeed(40, 2) } },
        ],
        'exactly the stored settings; only the seed is the frame’s own',
      );
      const keys = shotKeys(f.objectPrefix, shot.project, shot.id);
      for (const fr of await f.store.frames(shot.id)) {
        const img = await decodePng((await f.objects.get(fr.output ?? keys.output(fr.frame)))!);
        assert.deepEqual([img.width, img.height], [256, 256], `frame ${fr.frame} comes back at its own size`);
      }
    });

    it('renders a shot with attention injection on the inference thread, differently from one without', async () => {
      const frames = await sketchPngs(1);
      const render = async (injection: boolean) => {
        const { shot } = await submitShot(f, { settings: { mode: 'vanilla', steps: 3, injection, injectionFidelityReference: 0 }, seed: 8, frames });
        const done = await waitForShot(f.store, shot.id, ['completed', 'failed']);
        assert.equal(done.state, 'completed', JSON.stringify(done.error));
        assert.equal(done.settings.injection, injection);
        return Buffer.from((await f.objects.get((await f.store.frames(shot.id))[0]!.output!))!);
      };
      assert.notDeepEqual(await render(true), await render(false));
    });

    it('records in shot.json what was rendered — the resolved settings — and the warnings, not the request', async () => {
      const { shot } = await submitShot(f, { settings: { mode: 'vanilla', steps: 2, width: 100, height: 128 }, frames: await sketchPngs(1) });
      const done = await waitForShot(f.store, shot.id, ['completed', 'failed']);
      assert.equal(done.state, 'completed', JSON.stringify(done.error));
      const keys = shotKeys(f.objectPrefix, shot.project, shot.id);
      // finalize writes shot.json before the shot's state says completed.
      const written = await until('shot.json', () => f.objects.get(keys.manifest), { timeoutMs: 20_000 });
      const manifest = JSON.parse(new TextDecoder().decode(written)) as { settings: ResolvedSettings; warnings: unknown[] };
      assert.deepEqual(manifest.settings, JSON.parse(JSON.stringify(done.settings)));
      assert.deepEqual([manifest.settings.width, manifest.settings.height, manifest.settings.sizeFrom], [128, 128, 'request']);
      assert.deepEqual(manifest.warnings, [{ code: 'SIZE_FITTED', field: 'settings.width', message: 'width 100 is not a multiple of 64; rendering 128' }]);
      const img = await decodePng((await f.objects.get((await f.store.frames(shot.id))[0]!.output!))!);
      assert.deepEqual([img.width, img.height], [128, 128]);
    });
  });
});
