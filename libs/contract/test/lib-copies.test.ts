/**
 * Schemas that libs still declare beside the contract, because their modules reach Redis or
 * node:crypto and the contract must stay importable in a browser: until they take them from the
 * contract (or move them to zod-only modules the contract re-exports), each pair must describe
 * the same JSON, or the API would send what its clients' types do not say.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import * as jobs from '@celfarm/jobs';
import * as tenancy from '@celfarm/tenancy';
import * as webhooks from '@celfarm/webhooks';
import * as contract from '../src/index.ts';

/** The JSON Schema of `s`, its field order left out (JSON objects have none). */
const json = (s: z.ZodType): unknown => sorted(z.toJSONSchema(s, { io: 'output', unrepresentable: 'any' }));

function sorted(v: unknown, key = ''): unknown {
  if (Array.isArray(v)) return key === 'required' ? [...(v as string[])].sort() : v.map((x) => sorted(x));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, sorted(x, k)]));
  return v;
}

describe('the copies libs still hold match the contract', () => {
  const pairs: [string, z.ZodType, z.ZodType][] = [
    ['jobs farmEventSchema', jobs.farmEventSchema, contract.farmEventSchema],
    ['tenancy auditEntrySchema', tenancy.auditEntrySchema, contract.auditEntrySchema],
    ['webhooks deliveryAttemptSchema', webhooks.deliveryAttemptSchema, contract.deliveryAttemptSchema],
    ['webhooks subscribableEventSchema', webhooks.subscribableEventSchema, contract.subscribableEventSchema],
    ['webhooks webhookEventSchema', webhooks.webhookEventSchema, contract.webhookEventSchema],
  ];
  for (const [name, lib, wire] of pairs) {
    it(`${name} describes the same JSON as the contract's`, () => assert.deepEqual(json(lib), json(wire)));
  }

  it('names the same event types and scopes', () => {
    assert.deepEqual(jobs.EVENT_TYPES, contract.EVENT_TYPES);
    assert.deepEqual(webhooks.WEBHOOK_EVENT_TYPES, contract.WEBHOOK_EVENT_TYPES);
    assert.deepEqual(tenancy.SCOPES, contract.SCOPES);
  });
});
