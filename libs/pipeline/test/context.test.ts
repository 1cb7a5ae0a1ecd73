/** Size embedding and the safetensors layout of reference contexts. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PipelineError } from '../src/errors.ts';
import { decodeSafetensors, encodeSafetensors } from '../src/safetensors.ts';
import { deserializeReferenceContext } from '../src/reference.ts';
import { sizeEmbedding } from '../src/size-embedding.ts';

describe('size embedding', () => {
  it('biases small references upwards like the app (ih = oh + max(H, W))', () => {
    // 256×128 reference, target 512×512: ih = 128 + 512 = 640, iw = 256/128·640 = 1280.
    const y = sizeEmbedding(128, 256, 512, 512, 512);
    assert.deepEqual(y.dims, [1, 512]);
    const rh = 640 / 512;
    const rw = 1280 / 512;
    assert.ok(Math.abs(y.data[0]! - Math.cos(rh)) < 1e-6, 'cos(rh·f_0)');
    assert.ok(Math.abs(y.data[128]! - Math.sin(rh)) < 1e-6, 'sin(rh·f_0)');
    assert.ok(Math.abs(y.data[256 + 1]! - Math.cos(rw * Math.exp(-Math.log(10000) / 128))) < 1e-6, 'cos(rw·f_1)');
    // A large reference keeps its own size.
    const big = sizeEmbedding(1024, 1024, 512, 512, 512);
    assert.ok(Math.abs(big.data[0]! - Math.cos(2)) < 1e-6, 'rh = 2');
  });
});

describe('safetensors', () => {
  it('round-trips tensors and metadata, deterministically and 8-byte aligned', () => {
    const tensors = { b: { data: Float32Array.of(1, 2, 3, 4), dims: [2, 2] }, a: { data: Float32Array.of(-1), dims: [1] } };
    const bytes = encodeSafetensors(tensors, { k: 'v' });
    assert.deepEqual(encodeSafetensors({ a: tensors.a, b: tensors.b }, { k: 'v' }), bytes);
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal((8 + headerLen) % 8, 0);
    const back = decodeSafetensors(bytes);
    assert.deepEqual(back.metadata, { k: 'v' });
    assert.deepEqual(Array.from(back.tensors.b!.data), [1, 2, 3, 4]);
    assert.deepEqual(back.tensors.b!.dims, [2, 2]);
  });

  it('refuses truncated or foreign bytes with CONTEXT_INVALID', () => {
    const bytes = encodeSafetensors({ emb: { data: new Float32Array(8), dims: [1, 2, 4] } }, { format: 'x' });
    const check = (b: Uint8Array, re: RegExp) =>
      assert.throws(() => deserializeReferenceContext(b), (e: unknown) => e instanceof PipelineError && e.code === 'CONTEXT_INVALID' && re.test(e.message));
    check(bytes.subarray(0, 5), /shorter/);
    check(bytes.subarray(0, bytes.length - 4), /offsets/);
    check(bytes, /not a celfarm reference context/);
    check(new TextEncoder().encode('hello world, not safetensors'), /exceeds|JSON/);
  });
});
