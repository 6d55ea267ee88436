import { describe, expect, it } from 'vitest';
import { int64Values, withBatchAxis } from '../../agent/quantize/batch-axis.js';
import {
  DataType,
  decodeModel,
  encodeModel,
  floatTensor,
  makeNode,
  toNumber,
  type AttributeProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from '../../agent/quantize/onnx-model.js';

function int64Tensor(name: string, values: number[]): TensorProto {
  const data = BigInt64Array.from(values, (value) => BigInt(value));
  return { name, dataType: DataType.INT64, dims: [values.length], rawData: new Uint8Array(data.buffer), floatData: [] };
}

function shaped(name: string, dims: number[]): ValueInfoProto {
  return { name, type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: dims.map((dimValue) => ({ dimValue })) } } } };
}

const ints = (name: string, values: number[]): AttributeProto => ({ name, type: 7, ints: values });
const int = (name: string, value: number): AttributeProto => ({ name, type: 2, i: value });

/**
 * x [1,3,4,4] -> Conv 1x1 -> y -> (extra nodes) -> Reshape [1,3,-1] -> Transpose [0,2,1] -> out [1,16,3],
 * the shape of a YOLOX head; `extra` nodes read y and write y2.
 */
function headModel(extra: NodeProto[] = [], extraInits: TensorProto[] = []): ModelProto {
  const bytes = encodeModel({
    irVersion: 7,
    graph: {
      name: 'head',
      node: [
        makeNode('Conv', ['x', 'w'], ['y'], 'conv'),
        ...extra,
        makeNode('Reshape', [extra.length > 0 ? 'y2' : 'y', 'shape'], ['r'], 'reshape'),
        makeNode('Transpose', ['r'], ['out'], 'transpose', [ints('perm', [0, 2, 1])]),
      ],
      initializer: [floatTensor('w', [3, 3, 1, 1], new Float32Array(9).fill(1)), int64Tensor('shape', [1, 3, -1]), ...extraInits],
      input: [shaped('x', [1, 3, 4, 4])],
      output: [shaped('out', [1, 16, 3])],
      valueInfo: [shaped('y', [1, 3, 4, 4]), shaped('r', [1, 3, 16])],
    },
    opsetImport: [{ domain: '', version: 13 }],
    metadataProps: [],
  } as ModelProto);
  return decodeModel(bytes, 'head.onnx');
}

const firstDim = (value: ValueInfoProto | undefined) => value?.type?.tensorType?.shape?.dim[0];

describe('withBatchAxis', () => {
  it('makes the first dimension of the input and output symbolic and rewrites the head Reshape 1 -> 0', () => {
    const source = headModel();
    const { model, report } = withBatchAxis(source);
    const graph = model.graph!;
    expect(firstDim(graph.input[0])).toEqual({ dimParam: 'batch' });
    expect(firstDim(graph.output[0])).toEqual({ dimParam: 'batch' });
    expect(report.reshapesRewritten).toEqual(['reshape']);
    const reshape = graph.node.find((node) => node.name === 'reshape')!;
    expect(int64Values(graph.initializer.find((init) => init.name === reshape.input[1])!)).toEqual([0, 3, -1]);
    // The old constant is gone (nothing reads it), the intermediate batch-1 shapes are dropped.
    expect(graph.initializer.map((init) => init.name)).toEqual(['w', 'shape_batch']);
    expect(report.valueInfoShapesDropped).toBe(2);
    // The caller's model is untouched, and the result survives encoding.
    expect(toNumber(firstDim(source.graph!.input[0])?.dimValue)).toBe(1);
    const again = decodeModel(encodeModel(model), 'again.onnx');
    expect(firstDim(again.graph!.input[0])?.dimParam).toBe('batch');
  });

  it('fixes the batch when given a size', () => {
    const { model } = withBatchAxis(headModel(), 4);
    expect(toNumber(firstDim(model.graph!.input[0])?.dimValue)).toBe(4);
    expect(toNumber(firstDim(model.graph!.output[0])?.dimValue)).toBe(4);
  });

  it('two Reshapes sharing one shape constant share its rewrite', () => {
    const { model, report } = withBatchAxis(headModel([makeNode('Reshape', ['y', 'shape'], ['y2'], 'first')]));
    expect(report.reshapesRewritten).toEqual(['first', 'reshape']);
    expect(model.graph!.node.filter((node) => node.opType === 'Reshape').map((node) => node.input[1])).toEqual(['shape_batch', 'shape_batch']);
    expect(model.graph!.initializer.filter((init) => init.name.startsWith('shape'))).toHaveLength(1);
  });

  it.each([
    ['Concat along the batch', [makeNode('Concat', ['y', 'y'], ['y2'], 'odd', [int('axis', 0)])], [], 'Concat node odd: it works along axis 0'],
    [
      'Concat along a negative axis that may be the batch',
      [makeNode('Concat', ['y', 'y'], ['y2'], 'odd', [int('axis', -4)])],
      [],
      'Concat node odd: it works along axis -4',
    ],
    [
      'a Slice of the batch',
      [makeNode('Slice', ['y', 's', 'e', 'a'], ['y2'], 'odd')],
      [int64Tensor('s', [0]), int64Tensor('e', [1]), int64Tensor('a', [0])],
      'Slice node odd: it slices',
    ],
    ['a Transpose moving the batch', [makeNode('Transpose', ['y'], ['y2'], 'odd', [ints('perm', [1, 0, 2, 3])])], [], 'Transpose node odd: it moves'],
    ['an op not known to be per image', [makeNode('Einsum', ['y'], ['y2'], 'odd')], [], 'Einsum node odd: this op is not known'],
    [
      'a shape computed at run time',
      [makeNode('Reshape', ['y', 'computed'], ['y2'], 'odd')],
      [],
      'Reshape node odd: its shape (computed) is computed at run time',
    ],
    [
      'a Reshape to another batch',
      [makeNode('Reshape', ['y', 'two'], ['y2'], 'odd')],
      [int64Tensor('two', [2, 3, 2, 4])],
      'Reshape node odd: its shape [2, 3, 2, 4] does not start with the batch',
    ],
  ])('refuses %s with MODEL_BATCH_AXIS_UNSAFE naming the node', (_what, extra, inits, message) => {
    expect(() => withBatchAxis(headModel(extra, inits))).toThrow(
      expect.objectContaining({ code: 'MODEL_BATCH_AXIS_UNSAFE', message: expect.stringContaining(message) }),
    );
  });
});
