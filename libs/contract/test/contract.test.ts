/**
 * The wire contract as its users meet it: a browser bundle of it holds nothing of Node; an
 * error the API answers with is read back by a client as the same error; a view the API sends
 * parses as the contract says.
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { build } from 'esbuild';
import { ApiError, apiErrorBodySchema, shotViewSchema, submitViewSchema, type ShotView } from '../src/index.ts';

const ROOT = resolve(import.meta.dirname, '../../..');

describe('@celfarm/contract', () => {
  it('bundles for the browser from zod and zod-only modules, without Node', async () => {
    const out = await build({
      entryPoints: [resolve(import.meta.dirname, '../src/index.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
      absWorkingDir: ROOT,
    });
    const ours = Object.keys(out.metafile.inputs)
      .filter((p) => !p.startsWith('node_modules/zod/'))
      .sort();
    // The dashboard bundles exactly this: a module that reaches for Redis, S3 or node:* would fail
    // the build above, and a new import lands here to be looked at.
    assert.deepEqual(
      ours.filter((p) => !p.startsWith('libs/contract/src/')),
      ['libs/jobs/src/records.ts', 'libs/tenancy/src/project-id.ts'],
    );
  });

  it('reads an error answer back into the error the API threw', () => {
    const thrown = new ApiError(400, 'INVALID_REQUEST', 'must be at most 100', 'settings.steps');
    const read = ApiError.fromAnswer(400, JSON.stringify(thrown.body()), 'Bad Request');
    assert.deepEqual([read.status, read.code, read.field, read.message, read.name], [400, 'INVALID_REQUEST', 'settings.steps', 'must be at most 100', 'ApiError']);
    assert.deepEqual(apiErrorBodySchema.parse(thrown.body()), { error: { code: 'INVALID_REQUEST', field: 'settings.steps', message: 'must be at most 100' } });
    const noField = new ApiError(404, 'NOT_FOUND', 'shot s1 not found');
    assert.deepEqual(noField.body(), { error: { code: 'NOT_FOUND', message: 'shot s1 not found' } });
  });

  it('reads a proxy page or an empty answer as HTTP_<status>', () => {
    const page = ApiError.fromAnswer(502, '<html><body>Bad gateway</body></html>  ', 'Bad Gateway');
    assert.deepEqual([page.code, page.message], ['HTTP_502', '<html><body>Bad gateway</body></html>']);
    const empty = ApiError.fromAnswer(503, '', 'Service Unavailable');
    assert.deepEqual([empty.code, empty.message], ['HTTP_503', 'Service Unavailable']);
    assert.equal(ApiError.fromAnswer(500, '{"error":"Internal Server Error"}').code, 'HTTP_500');
  });

  it('parses a shot view with its frames, URLs and a permanent frame error', () => {
    const view: ShotView = {
      id: 's1',
      project: 'demo',
      state: 'failed',
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:01:00.000Z',
      settings: { steps: 4 },
      seed: 7,
      priority: 50,
      pack: { id: 'analytic', version: '1.0.0' },
      frameCount: 2,
      counts: { waiting: 0, active: 0, completed: 1, failed: 1, cancelled: 0 },
      retryableFrames: 0,
      progress: 0.5,
      etaSeconds: null,
      failedFrameShare: 0,
      awaitingUploads: false,
      round: 0,
      inputs: { reference: 'p/ref.png' },
      error: { code: 'TOO_MANY_FAILED_FRAMES', message: '1 of 2 frames failed' },
      frames: [
        { frame: 1, state: 'completed', attempts: 1, seed: 7, input: 'p/1.png', inputUrl: '/i/1', output: 'p/o/1.png', outputUrl: '/o/1', previewUrl: '/p/1' },
        { frame: 2, state: 'failed', attempts: 1, seed: 8, input: 'p/2.png', error: { code: 'INVALID_IMAGE', field: 'frames[1]', message: 'not an image', permanent: true } },
      ],
    };
    assert.deepEqual(shotViewSchema.parse(view), view);
    assert.deepEqual(submitViewSchema.parse({ ...view, uploads: [] }).uploads, []);
    assert.throws(() => shotViewSchema.parse({ ...view, state: 'done' }), /state/);
  });
});
