/**
 * A small ONNX graph builder over the `onnx-proto` protobuf classes.
 *
 * Graphs are written as a sequence of `op()` calls that return the names of their outputs, so a
 * model reads like the formula it computes. Names are generated (`n0`, `n1`, ...) unless given.
 */
import protobuf from 'onnx-proto';

const { onnx } = protobuf;

export type ElemType = 'float' | 'int64' | 'bool';
/** A dimension: a fixed size or a symbolic name (a dynamic axis). */
export type Dim = number | string;
export type AttrValue = number | number[] | string | Float32Array | { floats: number[] } | { tensor: ConstTensor };

export interface ConstTensor {
  dims: number[];
  data: Float32Array | BigInt64Array | number[];
  type: ElemType;
}

const TYPE_CODE: Record<ElemType, number> = {
  float: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
};

function valueInfo(name: string, type: ElemType, dims: Dim[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: TYPE_CODE[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function tensorProto(name: string, t: ConstTensor) {
  const base = { name, dims: t.dims, dataType: TYPE_CODE[t.type] };
  if (t.type === 'float') {
    const f = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as number[]);
    return onnx.TensorProto.create({ ...base, rawData: new Uint8Array(f.buffer, f.byteOffset, f.byteLength) });
  }
  if (t.type === 'int64') {
    const b =
      t.data instanceof BigInt64Array ? t.data : BigInt64Array.from((t.data as number[]).map((v) => BigInt(v)));
    return onnx.TensorProto.create({ ...base, rawData: new Uint8Array(b.buffer, b.byteOffset, b.byteLength) });
  }
  const u = Uint8Array.from((t.data as number[]).map((v) => (v ? 1 : 0)));
  return onnx.TensorProto.create({ ...base, rawData: u });
}

function attribute(name: string, v: AttrValue) {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return onnx.AttributeProto.create({ name, type: A.STRING, s: new TextEncoder().encode(v) });
  if (typeof v === 'number') {
    return Number.isInteger(v) && !Object.is(v, -0)
      ? onnx.AttributeProto.create({ name, type: A.INT, i: v })
      : onnx.AttributeProto.create({ name, type: A.FLOAT, f: v });
  }
  if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: A.INTS, ints: v });
  if (v instanceof Float32Array) return onnx.AttributeProto.create({ name, type: A.FLOATS, floats: Array.from(v) });
  if ('floats' in v) return onnx.AttributeProto.create({ name, type: A.FLOATS, floats: v.floats });
  return onnx.AttributeProto.create({ name, type: A.TENSOR, t: tensorProto(name, v.tensor) });
}

/** Float attributes that must stay floats even when integral (e.g. `alpha: 1`). */
export const f = (v: number): { floats: number[] } | number => (Number.isInteger(v) ? floatAttr(v) : v);
function floatAttr(v: number): { floats: number[] } {
  return { floats: [v] };
}

export class GraphBuilder {
  private readonly nodes: ReturnType<typeof onnx.NodeProto.create>[] = [];
  private readonly inputs: ReturnType<typeof valueInfo>[] = [];
  private readonly outputs: ReturnType<typeof valueInfo>[] = [];
  private readonly initializers: ReturnType<typeof tensorProto>[] = [];
  private counter = 0;
  private readonly scalarCache = new Map<string, string>();

  constructor(readonly name: string) {}

  private fresh(prefix = 'n'): string {
    return `${prefix}${this.counter++}`;
  }

  /** Declares a graph input and returns its name. */
  input(name: string, dims: Dim[], type: ElemType = 'float'): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Declares `value` as graph output `name` (through an Identity so any value can be exported). */
  output(name: string, value: string, dims: Dim[], type: ElemType = 'float'): void {
    this.nodes.push(onnx.NodeProto.create({ opType: 'Identity', input: [value], output: [name], name: `out_${name}` }));
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** A constant tensor stored as an initializer. */
  constant(data: Float32Array | number[] | BigInt64Array, dims: number[], type: ElemType = 'float'): string {
    const name = this.fresh('c');
    this.initializers.push(tensorProto(name, { dims, data, type }));
    return name;
  }

  /** A float scalar constant (rank 0), shared between uses. */
  scalar(v: number): string {
    const key = `f${v}`;
    let name = this.scalarCache.get(key);
    if (!name) {
      name = this.constant([v], []);
      this.scalarCache.set(key, name);
    }
    return name;
  }

  /** An int64 vector constant (shapes, axes, starts/ends), shared between uses. */
  ints(values: number[]): string {
    const key = `i${values.join(',')}`;
    let name = this.scalarCache.get(key);
    if (!name) {
      name = this.constant(BigInt64Array.from(values.map((v) => BigInt(v))), [values.length], 'int64');
      this.scalarCache.set(key, name);
    }
    return name;
  }

  /** Adds a node; returns its single output name. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.opN(opType, inputs, 1, attrs)[0]!;
  }

  /** Adds a node with `n` outputs. */
  opN(opType: string, inputs: string[], n: number, attrs: Record<string, AttrValue> = {}): string[] {
    const outputs = Array.from({ length: n }, () => this.fresh());
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        input: inputs,
        output: outputs,
        name: `${opType}_${outputs[0]}`,
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return outputs;
  }

  // Shorthands for the arithmetic that the analytic graphs are written in.
  add = (a: string, b: string) => this.op('Add', [a, b]);
  sub = (a: string, b: string) => this.op('Sub', [a, b]);
  mul = (a: string, b: string) => this.op('Mul', [a, b]);
  div = (a: string, b: string) => this.op('Div', [a, b]);
  /** Slice along one axis: [start, end). */
  slice = (x: string, axis: number, start: number, end: number) =>
    this.op('Slice', [x, this.ints([start]), this.ints([end]), this.ints([axis])]);
  reduceMean = (x: string, axes: number[], keepdims = 1) => this.op('ReduceMean', [x, this.ints(axes)], { keepdims });
  reduceSum = (x: string, axes: number[], keepdims = 1) => this.op('ReduceSum', [x, this.ints(axes)], { keepdims });
  reduceMax = (x: string, axes: number[], keepdims = 1) => this.op('ReduceMax', [x, this.ints(axes)], { keepdims });
  reduceMin = (x: string, axes: number[], keepdims = 1) => this.op('ReduceMin', [x, this.ints(axes)], { keepdims });
  unsqueeze = (x: string, axes: number[]) => this.op('Unsqueeze', [x, this.ints(axes)]);
  reshape = (x: string, shape: number[]) => this.op('Reshape', [x, this.ints(shape)]);
  concat = (xs: string[], axis: number) => this.op('Concat', xs, { axis });
  /** x repeated along `axis` `times` times (via Concat). */
  repeat = (x: string, axis: number, times: number) => (times === 1 ? x : this.concat(Array(times).fill(x), axis));
  /** A tensor of `like`'s shape filled with `value` (ConstantOfShape; no NaN propagation from `like`). */
  fill = (like: string, value: number, type: ElemType = 'float') =>
    this.op('ConstantOfShape', [this.op('Shape', [like])], {
      value: { tensor: { dims: [1], data: [value], type } },
    });
  cast = (x: string, to: ElemType) => this.op('Cast', [x], { to: TYPE_CODE[to] });
  transpose = (x: string, perm: number[]) => this.op('Transpose', [x], { perm });
  /** Square average pooling, kernel = stride = k, no padding (k = 1 returns x). */
  avgPool = (x: string, k: number) =>
    k === 1 ? x : this.op('AveragePool', [x], { kernel_shape: [k, k], strides: [k, k] });
  /** Square max pooling with symmetric padding (padding never wins: it counts as −∞). */
  maxPool = (x: string, k: number, stride = k, pad = 0) =>
    this.op('MaxPool', [x], { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad] });
  /** Nearest-neighbour upsampling of the two last axes by an integer factor (exact block replication). */
  upsampleNearest = (x: string, factor: number) =>
    factor === 1
      ? x
      : this.op('Resize', [x, '', this.constant([1, 1, factor, factor], [4])], {
          mode: 'nearest',
          coordinate_transformation_mode: 'asymmetric',
          nearest_mode: 'floor',
        });
  /** Clip to [lo, hi] (opset ≥ 11: bounds are scalar inputs). */
  clip = (x: string, lo: number, hi: number) => this.op('Clip', [x, this.scalar(lo), this.scalar(hi)]);

  /** Serialises the model. opset 18 (LayerNorm, Resize antialias, ReduceX with axes inputs). */
  build(opset = 18, docString = ''): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'celfarm-model-kit',
      producerVersion: '0.1.0',
      docString,
      opsetImport: [{ domain: '', version: opset }],
      graph: {
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
