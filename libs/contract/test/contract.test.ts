/**
 * The wire contract as its users meet it: a browser bundle of it holds nothing of Node; an
 * error the API answers with is read back by a client as the same error; a view the API sends
 * parses as the contract says.
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { build } from 'esbuild';
import {
  ApiError,
  apiErrorBodySchema,
  FRAME_PAGE_LIMIT,
  framePageSchema,
  frameQuerySchema,
  shotViewSchema,
  submitViewSchema,
  type FramePage,
  type ShotView,
} from '../src/index.ts';
import { resolveSettings } from '@celfarm/pipeline/settings';

const ROOT = resolve(import.meta.dirname, '../../..');
/** A pack's size rules, to resolve a shot's settings as the API sends them. */
const RULES = { id: 'analytic', version: '1.0.0', size: { multiple: 64, min: 64, max: 1024, default: 128 }, defaults: {}, graphs: {} };

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
      [
        'libs/jobs/src/event-types.ts',
        'libs/jobs/src/identity.ts',
        'libs/jobs/src/records.ts',
        // The settings a shot renders with, and their warnings: zod and name constants only.
        'libs/pipeline/src/pack/contract.ts',
        'libs/pipeline/src/sampling/names.ts',
        'libs/pipeline/src/settings-schema.ts',
        'libs/tenancy/src/audit-entry.ts',
        'libs/tenancy/src/project-id.ts',
        'libs/tenancy/src/scopes.ts',
        'libs/webhooks/src/records.ts',
      ],
    );
  });

  it('sends the very schemas the farm stores and publishes with, not copies of them', async () => {
    // Imported here only: these entry points reach Redis and node:crypto.
    const [contract, jobs, tenancy, webhooks] = await Promise.all([import('../src/index.ts'), import('@celfarm/jobs'), import('@celfarm/tenancy'), import('@celfarm/webhooks')]);
    const pairs: [string, unknown, unknown][] = [
      ['EVENT_TYPES', jobs.EVENT_TYPES, contract.EVENT_TYPES],
      ['farmEventSchema', jobs.farmEventSchema, contract.farmEventSchema],
      ['SCOPES', tenancy.SCOPES, contract.SCOPES],
      ['auditEntrySchema', tenancy.auditEntrySchema, contract.auditEntrySchema],
      ['auditPageSchema', tenancy.auditPageSchema, contract.auditPageSchema],
      ['WEBHOOK_EVENT_TYPES', webhooks.WEBHOOK_EVENT_TYPES, contract.WEBHOOK_EVENT_TYPES],
      ['webhookEventSchema', webhooks.webhookEventSchema, contract.webhookEventSchema],
      ['subscribableEventSchema', webhooks.subscribableEventSchema, contract.subscribableEventSchema],
      ['deliveryAttemptSchema', webhooks.deliveryAttemptSchema, contract.deliveryAttemptSchema],
    ];
    for (const [name, lib, wire] of pairs) assert.equal(lib, wire, `${name} is declared once, in its lib's zod-only module`);
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

  it('parses a shot view with its active frames, and a page of frames with URLs and a permanent frame error', () => {
    const view: ShotView = {
      id: 's1',
      project: 'demo',
      name: 'sh010',
      externalIds: { show: 'MOON', shot: 'sh010' },
      state: 'running',
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:01:00.000Z',
      settings: resolveSettings({ steps: 4, seed: 7, width: 250, height: 256 }, RULES).settings,
      warnings: [{ code: 'SIZE_FITTED', field: 'settings.width', message: 'width 250 is not a multiple of 64; rendering 256' }],
      seed: 7,
      priority: 50,
      pack: { id: 'analytic', version: '1.0.0' },
      frameCount: 3,
      counts: { waiting: 0, active: 1, completed: 1, failed: 1, cancelled: 0 },
      flagged: 0,
      needsReview: 0,
      retryableFrames: 0,
      progress: 0.5,
      etaSeconds: 3,
      failedFrameShare: 0.5,
      awaitingUploads: false,
      round: 0,
      inputs: { reference: 'p/ref.png' },
      active: [{ frame: 3, stage: 'sample', step: 2, steps: 4, worker: 'w1' }],
    };
    assert.deepEqual(shotViewSchema.parse(view), view);
    assert.deepEqual(submitViewSchema.parse({ ...view, uploads: [] }).uploads, []);
    assert.throws(() => shotViewSchema.parse({ ...view, state: 'done' }), /state/);
    const page: FramePage = {
      frames: [
        { frame: 1, fileName: 'sh010_0001.png', state: 'completed', attempts: 1, seed: 7, input: 'p/1.png', inputUrl: '/i/1', output: 'p/o/1.png', outputUrl: '/o/1', previewUrl: '/p/1', needsReview: false },
        { frame: 2, fileName: 'sh010_0002.png', state: 'failed', attempts: 1, seed: 8, input: 'p/2.png', error: { code: 'INVALID_IMAGE', field: 'frames[1]', message: 'not an image', permanent: true }, needsReview: false },
      ],
      next: '2',
    };
    assert.deepEqual(framePageSchema.parse(page), page);
  });

  it('reads the frame page query: states comma-separated or repeated, a cursor, a bounded limit', () => {
    assert.deepEqual(frameQuerySchema.parse({}), { limit: FRAME_PAGE_LIMIT.default });
    assert.deepEqual(frameQuerySchema.parse({ state: 'failed,cancelled', cursor: '100', limit: '20' }), { state: ['failed', 'cancelled'], cursor: '100', limit: 20 });
    assert.deepEqual(frameQuerySchema.parse({ state: ['failed', 'active'] }).state, ['failed', 'active']);
    for (const bad of [{ state: 'done' }, { state: '' }, { cursor: 'abc' }, { limit: String(FRAME_PAGE_LIMIT.max + 1) }, { limit: '0' }, { page: '2' }]) {
      assert.equal(frameQuerySchema.safeParse(bad).success, false, JSON.stringify(bad));
    }
  });
});
