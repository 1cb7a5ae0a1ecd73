/**
 * The safetensors layout for float32 tensors: 8-byte little-endian header length, a JSON header
 * `{name: {dtype: "F32", shape, data_offsets: [begin, end]}, __metadata__: {string: string}}`,
 * then the raw little-endian data. Tensor names are written in sorted order so the same tensors
 * always give the same bytes.
 */
import { PipelineError } from './errors.ts';
import type { Tensor } from './ort/runtime.ts';

export function encodeSafetensors(tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const n of names) {
    const t = tensors[n]!;
    header[n] = { dtype: 'F32', shape: t.dims, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let o = 8 + headerBytes.length;
  for (const n of names) {
    const t = tensors[n]!;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), o);
    o += t.data.byteLength;
  }
  return out;
}

export function decodeSafetensors(bytes: Uint8Array, field = 'context'): {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
} {
  const fail = (why: string) => new PipelineError('CONTEXT_INVALID', `not a valid safetensors file: ${why}`, field);
  if (bytes.length < 8) throw fail('shorter than its 8-byte header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = Number(view.getBigUint64(0, true));
  if (len > bytes.length - 8) throw fail(`header length ${len} exceeds the file`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + len)).toString('utf8'));
  } catch {
    throw fail('header is not JSON');
  }
  const base = 8 + len;
  const tensors: Record<string, Tensor> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (e.dtype !== 'F32') throw fail(`tensor ${name} has dtype ${e.dtype}, only F32 is used`);
    const [b, en] = e.data_offsets;
    const count = e.shape.reduce((a, d) => a * d, 1);
    if (en - b !== count * 4 || base + en > bytes.length) throw fail(`tensor ${name} offsets do not match its shape`);
    // Copy: the source buffer may not be 4-byte aligned at this offset.
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(bytes.subarray(base + b, base + en));
    tensors[name] = { data, dims: e.shape };
  }
  return { tensors, metadata };
}
