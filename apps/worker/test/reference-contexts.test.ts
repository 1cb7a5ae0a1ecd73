/**
 * Reference contexts found in the object store: a stored context that does not parse (a partial
 * object read while another worker was writing it to a store without atomic writes, a truncated
 * upload) is rebuilt and written again, instead of failing every frame that needs it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serializeReferenceContext, type PrepareOutput, type ReferenceContext } from '@celfarm/pipeline';
import type { ObjectStore } from '@celfarm/storage';
import { ReferenceContexts, type ContextInputs } from '../src/reference-contexts.ts';

const context = (key: string): Uint8Array => {
  const ctx: ReferenceContext = {
    key,
    pack: 'analytic@1.0.0',
    width: 64,
    height: 64,
    split: false,
    styleGate: 0,
    bgInjectGate: 0,
    loraGate: 0,
    emb: { data: Float32Array.of(1, 2, 3, 4), dims: [1, 1, 4] },
    contextBg: null,
    style: null,
    hsBg: null,
    blankControl: null,
    referenceMask: null,
    injection: null,
  };
  return serializeReferenceContext(ctx);
};

/** Only what ReferenceContexts uses. */
function memoryStore(): ObjectStore & { objects: Map<string, Uint8Array> } {
  const objects = new Map<string, Uint8Array>();
  const unused = () => Promise.reject(new Error('not used here'));
  return {
    objects,
    put: async (key, body) => void objects.set(key, body),
    get: async (key) => objects.get(key) ?? null,
    getStream: unused,
    head: unused,
    list: unused,
    deletePrefix: unused,
    presignPut: unused,
    presignGet: unused,
    ping: async () => undefined,
  };
}

describe('ReferenceContexts', () => {
  it('rebuilds and rewrites a stored context that does not parse, and reuses a good one', async () => {
    const objects = memoryStore();
    let builds = 0;
    const host = {
      prepare: async (): Promise<PrepareOutput> => {
        builds++;
        return { key: 'k1', context: context('k1'), seconds: 0.1, referenceMask: null } as unknown as PrepareOutput;
      },
    };
    const unreadable: string[] = [];
    // The fake host reads no settings.
    const load = async (): Promise<ContextInputs> => ({ reference: { data: new Float32Array(3), channels: 3, height: 1, width: 1 }, settings: {} as ContextInputs['settings'] });
    const contexts = new ReferenceContexts({ objects, host, prefix: 'p', onUnreadable: (key, e) => unreadable.push(`${key}: ${e.message}`) });
    // What a reader sees of an object another worker is still writing: its first bytes.
    const good = context('k1');
    objects.objects.set(contexts.objectKey('k1'), good.subarray(0, 5));
    const rebuilt = await contexts.obtain('k1', load);
    assert.equal(rebuilt.source, 'miss');
    assert.equal(builds, 1);
    assert.deepEqual(objects.objects.get(contexts.objectKey('k1')), good, 'the good context is written over the partial one');
    assert.equal(unreadable.length, 1);
    assert.match(unreadable[0]!, /^k1: /);
    // Another worker (no memory) now reads it from the store.
    const other = new ReferenceContexts({ objects, host, prefix: 'p' });
    const found = await other.obtain('k1', load);
    assert.equal(found.source, 'store');
    assert.deepEqual(found.bytes, good);
    assert.equal(builds, 1);
  });
});
